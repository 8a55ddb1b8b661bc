"""PETR's camera frustum geometry: depth bins and the 3D points behind every image token.

Each feature-map cell ``(u, v)`` (pixels of the padded, augmented image) is lifted to
``D`` points ``(u * d, v * d, d, 1)``, one per depth bin ``d``, and mapped to the LiDAR
frame with ``inverse(lidar2img)``; the points are then normalised by ``position_range``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..utils.misc import topk_gather

_DEPTH_EPS = 1e-5


def frustum_depth_bins(depth_num: int, depth_start: float, depth_max: float, lid: bool) -> Tensor:
    """Depth of each of the ``D`` bins, ``(D,)`` float32.

    ``lid=True``: linear-increasing spacing
    ``d_i = start + (max - start) / (D (D + 1)) * i (i + 1)``; otherwise uniform
    ``d_i = start + (max - start) / D * i``.
    """
    if depth_num <= 0:
        raise ValueError(f"depth_num must be positive, got {depth_num}")
    index = torch.arange(depth_num, dtype=torch.float32)
    if lid:
        bin_size = (depth_max - depth_start) / (depth_num * (1 + depth_num))
        return depth_start + bin_size * index * (index + 1)
    return depth_start + (depth_max - depth_start) / depth_num * index


def frustum_points(
    locations: Tensor,
    pad_shape: tuple[int, int],
    depth_bins: Tensor,
    lidar2img: Tensor,
    position_range: Tensor,
    topk_indexes: Optional[Tensor] = None,
) -> Tensor:
    """Normalised LiDAR-frame points along the camera ray of every image token.

    Args:
        locations: ``(B * N, H, W, 2)`` token centres as ``(x / pad_w, y / pad_h)``.
        pad_shape: ``(pad_h, pad_w)`` of the images in pixels.
        depth_bins: ``(D,)`` depths.
        lidar2img: ``(B, N, 4, 4)``.
        position_range: ``(6,)`` ``[x0, y0, z0, x1, y1, z1]`` used for normalisation.
        topk_indexes: optional ``(B, K, 1)`` indices of the kept tokens among the
            ``N * H * W`` tokens of a sample (camera-major order).

    Returns:
        ``(B, K, D, 3)`` float32 points normalised to ``position_range`` (not clamped);
        ``K = N * H * W`` without ``topk_indexes``. Computed with autocast disabled: the
        homogeneous pixel coordinates ``u * d`` exceed what float16 resolves.
    """
    with torch.autocast(device_type=lidar2img.device.type, enabled=False):
        points = _frustum_points(locations.float(), pad_shape, depth_bins.float(),
                                 lidar2img.float(), position_range.float())
    return topk_gather(points, topk_indexes)


def _frustum_points(locations: Tensor, pad_shape: tuple[int, int], depth_bins: Tensor,
                    lidar2img: Tensor, position_range: Tensor) -> Tensor:
    """Body of :func:`frustum_points` for all tokens, ``(B, N * H * W, D, 3)``."""
    batch, num_cams = lidar2img.shape[:2]
    height, width = locations.shape[1:3]
    pad_h, pad_w = pad_shape
    pixels = locations.detach().reshape(batch, num_cams, height * width, 1, 2)
    # Python scalars, not a tensor built from them: no host-to-device copy (CUDA-graph capturable).
    pixels = torch.stack([pixels[..., 0] * pad_w, pixels[..., 1] * pad_h], dim=-1)
    depth = depth_bins.to(pixels).view(1, 1, 1, -1, 1).expand(batch, num_cams, height * width, -1, 1)
    homogeneous = torch.cat(
        [pixels * depth.clamp(min=_DEPTH_EPS), depth, torch.ones_like(depth)], dim=-1
    )
    img2lidar = torch.linalg.inv(lidar2img)
    points = torch.einsum("bnij,bnkdj->bnkdi", img2lidar, homogeneous)[..., :3]
    points = (points - position_range[:3]) / (position_range[3:] - position_range[:3])
    return points.reshape(batch, num_cams * height * width, -1, 3)


def camera_focal_tokens(
    intrinsics: Tensor, tokens_per_camera: int, topk_indexes: Optional[Tensor] = None
) -> Tensor:
    """Per-token ``|fx|, |fy|`` in thousands of pixels, ``(B, K, 2)``.

    The focal lengths are tiled over the tokens exactly as StreamPETR does
    (``intrinsic.repeat(1, H * W, 1)``): token ``t`` of the camera-major token order gets
    the focal lengths of camera ``t mod N``. Published weights were trained with this
    pairing, so it is kept for checkpoint fidelity.

    Args:
        intrinsics: ``(B, N, 4, 4)`` (3x3 intrinsics in the top-left corner).
        tokens_per_camera: ``H * W`` tokens of each camera.
        topk_indexes: optional ``(B, K, 1)`` kept tokens.
    """
    focal = torch.stack([intrinsics[..., 0, 0], intrinsics[..., 1, 1]], dim=-1).abs() / 1e3
    focal = focal.float().repeat(1, tokens_per_camera, 1)
    return topk_gather(focal, topk_indexes)
