"""Data pipeline transforms, registered by the names StreamPETR configs use."""
