"""3D box layout constants, box coders, assigners, match costs and box utilities."""
