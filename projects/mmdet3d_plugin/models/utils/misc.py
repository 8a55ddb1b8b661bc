"""Small tensor helpers shared by the query heads: logits, memory, gathers, poses, grids."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Inverse of the sigmoid, ``log(x / (1 - x))``, clamped for stability.

    Args:
        x: any shape; values are clamped to ``[0, 1]`` first.
        eps: lower bound for ``x`` and ``1 - x`` inside the logarithm.

    Returns:
        Tensor of the same shape as ``x``.
    """
    x = x.clamp(min=0.0, max=1.0)
    return torch.log(x.clamp(min=eps) / (1.0 - x).clamp(min=eps))


def memory_refresh(memory: Tensor, prev_exist: Tensor) -> Tensor:
    """Zero the batch slots of a memory tensor whose scene just started.

    Args:
        memory: ``(B, ...)`` any memory (embeddings, points, timestamps, poses).
        prev_exist: ``(B,)`` bool or 0/1; False (0) marks the first frame of a scene.

    Returns:
        ``(B, ...)`` the memory with slots where ``prev_exist`` is False set to zero.
    """
    if prev_exist.numel() != memory.shape[0]:
        raise ValueError(
            f"memory_refresh: prev_exist has {prev_exist.numel()} entries, "
            f"memory has batch size {memory.shape[0]}"
        )
    keep = prev_exist.to(device=memory.device).bool().view(-1, *([1] * (memory.dim() - 1)))
    return torch.where(keep, memory, torch.zeros((), dtype=memory.dtype, device=memory.device))


def topk_gather(feat: Tensor, topk_indexes: Optional[Tensor]) -> Tensor:
    """Gather rows of ``feat`` along dimension 1.

    Args:
        feat: ``(B, N, ...)`` e.g. ``(B, N, C)``.
        topk_indexes: ``(B, K, 1)`` (or ``(B, K)``) int64 indices into ``N``; None returns
            ``feat`` unchanged.

    Returns:
        ``(B, K, ...)`` with ``out[b, k] = feat[b, topk_indexes[b, k]]``.
    """
    if topk_indexes is None:
        return feat
    batch, num = topk_indexes.shape[:2]
    index = topk_indexes.reshape(batch, num, *([1] * (feat.dim() - 2)))
    return torch.gather(feat, 1, index.expand(batch, num, *feat.shape[2:]))


def transform_reference_points(
    reference_points: Tensor, egopose: Tensor, reverse: bool = False, translation: bool = True
) -> Tensor:
    """Apply a 4x4 rigid transform to 3D points (homogeneous coordinates).

    Args:
        reference_points: ``(B, N, 3)`` points.
        egopose: ``(B, 4, 4)`` transforms, one per batch element.
        reverse: apply the inverse of ``egopose`` instead.
        translation: when False only the rotation part is applied (for directions such as
            velocities). ``egopose`` itself is never modified.

    Returns:
        ``(B, N, 3)`` transformed points, in the dtype of ``reference_points``.
    """
    matrix = egopose.inverse() if reverse else egopose
    matrix = matrix.to(reference_points.dtype)
    rotated = torch.einsum("bij,bnj->bni", matrix[:, :3, :3], reference_points)
    if not translation:
        return rotated
    return rotated + matrix[:, None, :3, 3]


@torch.no_grad()
def locations(features: Tensor, stride: int, pad_h: int, pad_w: int) -> Tensor:
    """Centres of the feature-map cells in image coordinates normalised by the padded size.

    Args:
        features: ``(B*N, C, H, W)`` a feature map (only its size and device are used).
        stride: feature stride in pixels; cell ``j`` is centred at ``j * stride + stride // 2``.
        pad_h: padded image height in pixels.
        pad_w: padded image width in pixels.

    Returns:
        ``(H, W, 2)`` float32 ``(x / pad_w, y / pad_h)`` of each cell centre.
    """
    height, width = features.shape[-2:]
    device = features.device
    xs = (torch.arange(width, dtype=torch.float32, device=device) * stride + stride // 2) / pad_w
    ys = (torch.arange(height, dtype=torch.float32, device=device) * stride + stride // 2) / pad_h
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)


def to_metric(points: Tensor, pc_range: Tensor) -> Tensor:
    """Points ``(..., 3)`` normalised to ``pc_range`` ``[x0, y0, z0, x1, y1, z1]`` in metres."""
    return points * (pc_range[3:] - pc_range[:3]) + pc_range[:3]
