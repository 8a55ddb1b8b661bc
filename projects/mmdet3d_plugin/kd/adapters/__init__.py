"""Trainable student-to-teacher projections."""
from .conv_adapter import ConvAdapter
from .linear_adapter import LinearAdapter

__all__ = ["ConvAdapter", "LinearAdapter"]
