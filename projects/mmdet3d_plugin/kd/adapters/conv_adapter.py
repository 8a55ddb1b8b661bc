"""ConvAdapter: a trainable convolution projecting student feature maps to the teacher's channels."""
from __future__ import annotations

from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class ConvAdapter(nn.Module):
    """``k×k`` convolution (default 1×1) from ``in_channels`` to ``out_channels``.

    Used when a student map has fewer (or more) channels than the teacher's, e.g. an R18
    neck with 128 channels distilled towards a 256-channel teacher neck.

    Args:
        in_channels: student channels ``C_s``.
        out_channels: teacher channels ``C_t``.
        kernel_size: odd kernel size (padding keeps the spatial size).
        bias: whether the convolution has a bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, bias: bool = True) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"ConvAdapter needs positive channels, got in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        if kernel_size <= 0 or kernel_size % 2 == 0:
            raise ValueError(f"ConvAdapter kernel_size must be a positive odd number, got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., C_s, H, W)`` → ``(..., C_t, H, W)``; leading dims (e.g. ``B, N``) are kept."""
        if x.dim() < 4 or x.shape[-3] != self.in_channels:
            raise ValueError(f"ConvAdapter expects (..., {self.in_channels}, H, W) with at least one "
                             f"leading dim, got {tuple(x.shape)}")
        lead = x.shape[:-3]
        out = self.conv(x.reshape(-1, *x.shape[-3:]))
        return out.reshape(*lead, *out.shape[-3:])
