"""Geometry and targets of StreamPETR's 2D auxiliary ``FocalHead``.

Predictions live on the feature grid: every token predicts a box as distances
``(l, t, r, b)`` from its centre and an offset to the projected 3D centre, both normalised
by the padded image size. The centerness target is a Gaussian heatmap around the projected
centres of the GT objects.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ...core.bbox.box_ops import bbox_xyxy_to_cxcywh
from ..utils.misc import inverse_sigmoid


def apply_ltrb(locations: Tensor, ltrb: Tensor) -> Tensor:
    """Boxes from token centres and distances.

    Args:
        locations: ``(..., H, W, 2)`` normalised token centres ``(x, y)``.
        ltrb: ``(N, H, W, 4)`` normalised distances to the left/top/right/bottom edges.

    Returns:
        ``(N, H, W, 4)`` boxes ``(cx, cy, w, h)`` clipped to ``[0, 1]``.
    """
    xy = locations.expand(ltrb.shape[0], *locations.shape[-3:])
    boxes = torch.cat([xy - ltrb[..., :2], xy + ltrb[..., 2:]], dim=-1).clamp(0.0, 1.0)
    return bbox_xyxy_to_cxcywh(boxes)


def apply_center_offset(locations: Tensor, offset: Tensor) -> Tensor:
    """Projected centres ``sigmoid(inverse_sigmoid(location) + offset)``, ``(N, H, W, 2)``."""
    return (inverse_sigmoid(locations) + offset).sigmoid()


def gaussian_heatmap(
    centers: Tensor, radius: Tensor, height: int, width: int
) -> Tensor:
    """Max-combined Gaussian peaks on a ``(height, width)`` grid.

    Each object paints ``exp(-(dx^2 + dy^2) / (2 sigma^2))`` with
    ``sigma = (2 r + 1) / 6`` on the ``(2 r + 1)^2`` cells around its (truncated) centre.

    Args:
        centers: ``(M, 2)`` centres in grid cells ``(x, y)``.
        radius: ``(M,)`` integer radii (at least 1).

    Returns:
        ``(height, width)`` float32 heatmap (zeros when ``M == 0``).
    """
    if centers.numel() == 0:
        return centers.new_zeros(height, width)
    cx, cy = torch.trunc(centers[:, 0]), torch.trunc(centers[:, 1])
    xs = torch.arange(width, device=centers.device, dtype=centers.dtype)
    ys = torch.arange(height, device=centers.device, dtype=centers.dtype)
    dx = xs[None, None, :] - cx[:, None, None]
    dy = ys[None, :, None] - cy[:, None, None]
    sigma = ((2 * radius + 1) / 6).to(centers.dtype)[:, None, None]
    peaks = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    r = radius.to(centers.dtype)[:, None, None]
    inside = (dx.abs() <= r) & (dy.abs() <= r)
    peaks = torch.where(inside & (peaks >= torch.finfo(torch.float64).eps), peaks,
                        torch.zeros_like(peaks))
    return peaks.amax(dim=0)


def centerness_targets(
    centers2d: Sequence[Tensor], gt_bboxes: Sequence[Tensor], height: int, width: int,
    stride: int,
) -> Tensor:
    """Heatmaps of all images, ``(num_images, height * width, 1)``.

    Args:
        centers2d: per image ``(M, 2)`` projected centres in pixels.
        gt_bboxes: per image ``(M, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels.
        height, width: feature grid size; stride: pixels per cell.

    The radius of an object is ``ceil(min(l, t, r, b) / stride)`` (at least 1), the
    distances from its projected centre to its box edges.
    """
    maps = []
    for centers, boxes in zip(centers2d, gt_bboxes):
        bound = torch.cat([centers - boxes[:, :2], boxes[:, 2:] - centers], dim=-1)
        radius = torch.ceil(bound.min(dim=-1).values / stride).clamp(min=1.0).long()
        maps.append(gaussian_heatmap(centers.float() / stride, radius, height, width))
    return torch.stack(maps).reshape(len(maps), height * width, 1)
