"""Temporal state and alignment: the memory queue and motion-aware layer norm (MLN)."""
