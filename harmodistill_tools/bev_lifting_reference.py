"""The BEV lifting written densely: the reference that checks and times ``BEVLifting``.

:class:`~projects.mmdet3d_plugin.kd.bev.lifting.BEVLifting` samples only the (voxel, camera)
pairs in which the camera sees the voxel. This reference samples **every** camera at **every**
voxel with ``grid_sample`` (one call per height level) and masks afterwards, the direct
transcription of the formula in the lifting's docstring. ``tests/kd/bev/test_lifting.py``
checks that both give the same values and gradients; ``tools/benchmark_bev_lifting.py`` times
one against the other.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from projects.mmdet3d_plugin.kd.bev.lifting import MIN_DEPTH, BEVLifting
from projects.mmdet3d_plugin.kd.losses.region_weights import bev_cell_centers


def dense_bev_lifting(lifting: BEVLifting, features: Tensor, lidar2img: Tensor,
                      pad_shape: Sequence[Sequence[int]]) -> Tensor:
    """``lifting(features, lidar2img, pad_shape)`` computed densely.

    Args:
        lifting: gives the grid (``pc_range``, ``bev_size``, heights) and the height reduction.
        features: ``(B * N, C, H_f, W_f)``, sample-major.
        lidar2img: ``(B, N, 4, 4)``.
        pad_shape: B pairs ``(H_img, W_img)``.

    Returns:
        ``(B, C, H, W)`` float32.
    """
    batch, cams = lidar2img.shape[:2]
    features = features.float()
    channels = features.shape[1]
    matrices = lidar2img.float()
    xy = bev_cell_centers(lifting.pc_range, lifting.bev_size, features.device).view(-1, 2)
    sizes = matrices.new_tensor([[float(shape[1]), float(shape[0])] for shape in pad_shape])[:, None, None, :]
    values, levels_seen = [], []
    for height in lifting.heights():
        points = torch.cat((xy, torch.full_like(xy[:, :1], height), torch.ones_like(xy[:, :1])), dim=1)
        homog = torch.einsum("bnij,kj->bnki", matrices, points)
        pixels = homog[..., :2] / homog[..., 2:3].clamp(min=MIN_DEPTH)
        seen = ((pixels >= 0) & (pixels < sizes)).all(dim=-1) & (homog[..., 2] > MIN_DEPTH)
        grid = (2.0 * pixels / sizes - 1.0).flatten(0, 1).unsqueeze(1)
        sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = sampled.view(batch, cams, channels, -1)
        count = seen.sum(dim=1).unsqueeze(1)
        values.append((sampled * seen.unsqueeze(2)).sum(dim=1) / count.clamp(min=1))
        levels_seen.append(count > 0)
    value, level_seen = torch.stack(values), torch.stack(levels_seen)
    if lifting.height_reduction == "max":
        lowest = torch.full_like(value, torch.finfo(value.dtype).min)
        total = torch.where(level_seen, value, lowest).amax(dim=0)
        total = torch.where(level_seen.any(dim=0), total, torch.zeros_like(total))
    else:
        total = value.sum(dim=0) / level_seen.sum(dim=0).clamp(min=1)
    return total.view(batch, channels, *lifting.bev_size)
