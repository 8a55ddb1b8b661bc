"""Attention, feed-forward blocks and the PETR / DETR3D decoders with deformable aggregation."""
