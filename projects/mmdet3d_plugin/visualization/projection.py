"""Projecting 3D boxes into camera images: centres, and the 12 edges clipped at the near plane.

Boxes are in the box layout of ``core/bbox/box_layout.py`` (LiDAR frame); ``lidar2img``
maps homogeneous LiDAR points to homogeneous pixels (docs/data_contract.md). An edge with one
end behind the camera is cut where it crosses the plane ``depth = NEAR_PLANE_M`` (the depth
is linear along a 3D segment, so the cut point is found in 3D and then projected); edges
wholly behind it are dropped.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.bbox.box_ops import box3d_corners

#: The 12 edges of a box as pairs of ``box3d_corners`` indices (0-3 rear face, 4-7 front).
BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
             (0, 4), (1, 5), (2, 6), (3, 7))
#: Edges of the front face (drawn with a cross to show the heading).
FRONT_FACE = (4, 5, 6, 7)
NEAR_PLANE_M = 0.1


def corners_of(boxes: np.ndarray) -> np.ndarray:
    """``(M, 8, 3)`` corners of ``(M, 9)`` (or ``(M, 7)``) boxes."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 8, 3))
    return box3d_corners(torch.from_numpy(boxes.reshape(-1, boxes.shape[-1]))).numpy()


def project_points(points: np.ndarray, lidar2img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and camera depths of LiDAR points.

    Args:
        points: ``(..., 3)`` LiDAR-frame points.
        lidar2img: ``(4, 4)``.

    Returns:
        ``uv (..., 2)`` pixels (meaningless where the depth is not positive) and
        ``depth (...)``.
    """
    points = np.asarray(points, dtype=np.float64)
    homogeneous = np.concatenate([points, np.ones_like(points[..., :1])], axis=-1)
    cam = homogeneous @ np.asarray(lidar2img, dtype=np.float64).T
    depth = cam[..., 2]
    uv = cam[..., :2] / np.where(np.abs(depth) < 1e-9, 1e-9, depth)[..., None]
    return uv, depth


def project_box_centers(boxes: np.ndarray, lidar2img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``uv (M, 2)`` and ``depth (M,)`` of the geometric centres of ``(M, 9)`` boxes."""
    return project_points(np.asarray(boxes, dtype=np.float64)[:, :3], lidar2img)


def box_edges_2d(boxes: np.ndarray, lidar2img: np.ndarray) -> list[np.ndarray]:
    """Image segments of every box's 12 edges, clipped at the near plane.

    Args:
        boxes: ``(M, 9)`` boxes.
        lidar2img: ``(4, 4)``.

    Returns:
        M arrays ``(E_m, 2, 2)`` (segment, end, uv), ``E_m <= 12``, in :data:`BOX_EDGES`
        order with the invisible edges left out (``E_m = 0`` for a box behind the camera).
        Segments are not clipped to the image bounds (the plotting axes do that).
    """
    lidar2img = np.asarray(lidar2img, dtype=np.float64)
    depth_row = lidar2img[2]
    segments = []
    for corners in corners_of(boxes):
        starts = corners[[a for a, _ in BOX_EDGES]]
        ends = corners[[b for _, b in BOX_EDGES]]
        d0 = starts @ depth_row[:3] + depth_row[3]
        d1 = ends @ depth_row[:3] + depth_row[3]
        visible = (d0 > NEAR_PLANE_M) | (d1 > NEAR_PLANE_M)
        t = np.clip((NEAR_PLANE_M - d0) / np.where(d1 == d0, 1.0, d1 - d0), 0.0, 1.0)
        cut = starts + t[:, None] * (ends - starts)
        starts = np.where((d0 > NEAR_PLANE_M)[:, None], starts, cut)
        ends = np.where((d1 > NEAR_PLANE_M)[:, None], ends, cut)
        uv0, _ = project_points(starts[visible], lidar2img)
        uv1, _ = project_points(ends[visible], lidar2img)
        segments.append(np.stack([uv0, uv1], axis=1))
    return segments


def box_in_image(boxes: np.ndarray, lidar2img: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """``(M,)`` bool: the box centre is in front of the camera and inside ``(H, W)``."""
    uv, depth = project_box_centers(boxes, lidar2img)
    height, width = image_size
    return (depth > NEAR_PLANE_M) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
