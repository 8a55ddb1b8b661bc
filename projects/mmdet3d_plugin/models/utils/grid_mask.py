"""GridMask image augmentation (Chen et al., 2020), as used by PETR-family detectors.

A grid of stripes with random period ``d`` and phase is drawn on a canvas 1.5x the image,
optionally rotated, centre-cropped to the image and multiplied into every image and
channel of the batch (with ``mode=1`` the stripes are kept and the rest is zeroed).
Everything runs in PyTorch on the input's device and draws from torch's RNG.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...registry import MODELS


def _stripes(size: int, period: int, width: int, start: int, device: torch.device) -> Tensor:
    """``(size,)`` bool, True on ``[start + k * period, start + k * period + width)``.

    Only the ``size // period`` stripes that start inside the canvas are drawn.
    """
    index = torch.arange(size, device=device)
    shifted = index - start
    return (shifted >= 0) & (shifted % period < width) & (shifted // period < size // period)


def _rotate_nearest(mask: Tensor, degrees: float) -> Tensor:
    """Rotate a ``(H, W)`` mask counter-clockwise about its centre (nearest, zero fill)."""
    if degrees == 0:
        return mask
    height, width = mask.shape
    theta = math.radians(degrees)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=mask.device, dtype=torch.float32),
        torch.arange(width, device=mask.device, dtype=torch.float32),
        indexing="ij",
    )
    dx, dy = xs + 0.5 - width / 2, ys + 0.5 - height / 2
    src_x = torch.floor(math.cos(theta) * dx - math.sin(theta) * dy + width / 2).long()
    src_y = torch.floor(math.sin(theta) * dx + math.cos(theta) * dy + height / 2).long()
    inside = (src_x >= 0) & (src_x < width) & (src_y >= 0) & (src_y < height)
    rotated = mask[src_y.clamp(0, height - 1), src_x.clamp(0, width - 1)]
    return torch.where(inside, rotated, torch.zeros_like(rotated))


@MODELS.register_module()
class GridMask(nn.Module):
    """Grid masking of a batch of images, active only in training mode.

    Args:
        use_h: Draw horizontal stripes.
        use_w: Draw vertical stripes.
        rotate: Rotation drawn uniformly from ``[0, rotate)`` degrees (1: no rotation).
        offset: Fill masked pixels with uniform noise in ``[-1, 1]`` instead of zeros.
        ratio: Stripe width as a fraction of the period.
        mode: 0 zeroes the stripes, 1 keeps only the stripes.
        prob: Probability of masking a batch.
    """

    def __init__(
        self,
        use_h: bool = True,
        use_w: bool = True,
        rotate: int = 1,
        offset: bool = False,
        ratio: float = 0.5,
        mode: int = 0,
        prob: float = 1.0,
    ) -> None:
        super().__init__()
        if mode not in (0, 1):
            raise ValueError(f"GridMask mode must be 0 or 1, got {mode}")
        if rotate < 1:
            raise ValueError(f"GridMask rotate must be >= 1 (1 means no rotation), got {rotate}")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"GridMask prob must be in [0, 1], got {prob}")
        self.use_h = use_h
        self.use_w = use_w
        self.rotate = rotate
        self.offset = offset
        self.ratio = ratio
        self.mode = mode
        self.st_prob = prob
        self.prob = prob

    def set_prob(self, epoch: int, max_epoch: int) -> None:
        """Ramp the masking probability linearly with training progress."""
        self.prob = self.st_prob * epoch / max_epoch

    def make_mask(self, height: int, width: int, device: torch.device) -> Tensor:
        """One random ``(height, width)`` float mask: 1 keeps a pixel, 0 masks it."""
        canvas_h, canvas_w = int(1.5 * height), int(1.5 * width)
        period = int(torch.randint(2, max(height, 3), (1,)))
        stripe = min(max(int(period * self.ratio + 0.5), 1), period - 1)
        start_h, start_w = (int(v) for v in torch.randint(period, (2,)))
        masked = torch.zeros(canvas_h, canvas_w, dtype=torch.bool, device=device)
        if self.use_h:
            masked |= _stripes(canvas_h, period, stripe, start_h, device)[:, None]
        if self.use_w:
            masked |= _stripes(canvas_w, period, stripe, start_w, device)[None, :]
        mask = _rotate_nearest((~masked).float(), float(torch.randint(self.rotate, (1,))))
        top, left = (canvas_h - height) // 2, (canvas_w - width) // 2
        mask = mask[top:top + height, left:left + width]
        return 1.0 - mask if self.mode == 1 else mask

    def forward(self, x: Tensor) -> Tensor:
        """Mask ``x`` ``(N, C, H, W)`` with one shared grid (identity in eval mode)."""
        if not self.training or float(torch.rand(())) > self.prob:
            return x
        height, width = x.shape[-2:]
        mask = self.make_mask(height, width, x.device).to(x.dtype)
        if self.offset:
            noise = torch.rand(height, width, device=x.device, dtype=x.dtype) * 2 - 1
            return x * mask + noise * (1 - mask)
        return x * mask
