"""Synthetic input frames for tracing and parity checks of an exported streaming detector.

A six-camera ring (nuScenes-like: cameras 1.5 m up, looking out at 60 degree steps), an ego
that drives and turns a little between frames and a scene that starts at frame 0. The
values are plausible in scale (global coordinates of a few hundred metres, float64
timestamps around 1.6e9 s) so that a parity check exercises the same precision as real
data.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_FOCAL_PER_WIDTH = 0.72  # focal length / image width of the nuScenes front camera at 704 px
_CAMERA_HEIGHT_M = 1.5
_FRAME_DT_S = 0.5
_SPEED_M_PER_FRAME = 2.0
_TURN_RAD_PER_FRAME = 0.05


def ring_camera(yaw: float, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Intrinsics and LiDAR->camera extrinsics ``(4, 4)`` of a camera looking along ``yaw``.

    Args:
        yaw: viewing direction in the LiDAR frame (radians, 0 along +x).
        image_size: ``(H, W)`` in pixels; the principal point is the image centre.
    """
    height, width = image_size
    focal = _FOCAL_PER_WIDTH * width
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    forward = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
    right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
    rotation = torch.stack([right, torch.tensor([0.0, 0.0, -1.0]), forward])
    extrinsics = torch.eye(4)
    extrinsics[:3, :3] = rotation
    extrinsics[:3, 3] = -rotation @ torch.tensor([0.0, 0.0, _CAMERA_HEIGHT_M])
    return intrinsics, extrinsics


def synthetic_frame(index: int, batch_size: int, num_cams: int, image_size: tuple[int, int],
                    seed: int = 0) -> dict[str, Tensor]:
    """Frame ``index`` of a synthetic stream (``prev_exists`` False only at index 0).

    Returns:
        ``img (B, N, 3, H, W)`` standard-normal "normalised" pixels, ``lidar2img``,
        ``intrinsics``, ``extrinsics`` ``(B, N, 4, 4)``, ``ego_pose``, ``ego_pose_inv``
        ``(B, 4, 4)``, ``timestamp (B,)`` float64, ``prev_exists (B,)`` bool.
    """
    gen = torch.Generator().manual_seed(seed * 1000 + index)
    cams = [ring_camera(2 * math.pi * n / num_cams, image_size) for n in range(num_cams)]
    intrinsics = torch.stack([c[0] for c in cams]).expand(batch_size, -1, -1, -1).clone()
    extrinsics = torch.stack([c[1] for c in cams]).expand(batch_size, -1, -1, -1).clone()
    angle = _TURN_RAD_PER_FRAME * index
    pose = torch.eye(4, dtype=torch.float64)
    pose[:2, :2] = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pose[:3, 3] = torch.tensor([600.0 + _SPEED_M_PER_FRAME * index, 1200.0, 0.0])
    return dict(
        img=torch.randn(batch_size, num_cams, 3, *image_size, generator=gen),
        lidar2img=intrinsics @ extrinsics, intrinsics=intrinsics, extrinsics=extrinsics,
        ego_pose=pose.float().expand(batch_size, 4, 4).clone(),
        ego_pose_inv=torch.linalg.inv(pose).float().expand(batch_size, 4, 4).clone(),
        timestamp=torch.full((batch_size,), 1.6e9 + _FRAME_DT_S * index, dtype=torch.float64),
        prev_exists=torch.full((batch_size,), index > 0, dtype=torch.bool),
    )
