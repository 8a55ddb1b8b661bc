"""Small shared helpers: positional encodings, GridMask, fp32 regions, sigmoid and gather."""
