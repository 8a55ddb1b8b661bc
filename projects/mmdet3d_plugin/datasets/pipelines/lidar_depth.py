"""LiDAR depth targets: the frame's LiDAR sweep projected into every augmented camera.

For a LiDAR point ``p = (x, y, z)`` (LiDAR frame) and camera ``n``::

    [u·d, v·d, d, 1]^T = K_n @ E_n @ [x, y, z, 1]^T

with ``K_n`` the augmented ``intrinsics`` and ``E_n`` the ``extrinsics`` (LiDAR -> camera),
so ``d`` is the camera z (metres) and ``(u, v)`` the pixel in the augmented image (corner
convention of ``image_aug.py``). ``K_n @ E_n`` is ``lidar2img`` as
``ResizeCropFlipRotImage`` leaves it; ``GlobalRotScaleTransImage`` later right-multiplies
``lidar2img`` by the inverse BEV augmentation (its frame is the augmented LiDAR frame, the
sweep's points are not), so the projection is rebuilt from ``intrinsics @ extrinsics``,
which that step leaves alone: the depth maps are right on either side of it.

The point falls in cell ``(floor(v / s), floor(u / s))`` of a ``(ceil(H / s), ceil(W / s))``
grid (stride ``s``, ``(H, W) = img_shape``); a cell holds the smallest depth of its points
(the visible surface), 0 where none falls.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...registry import TRANSFORMS

#: Floats per point of a nuScenes ``.pcd.bin`` sweep: x, y, z, intensity, ring.
NUSCENES_POINT_DIM = 5


def read_lidar_points(path: str | Path, load_dim: int = NUSCENES_POINT_DIM) -> np.ndarray:
    """The ``(P, 3)`` float64 LiDAR-frame points ``x, y, z`` of a ``.pcd.bin`` sweep.

    Args:
        path: float32 file of ``P * load_dim`` values, one point per ``load_dim`` floats.
        load_dim: floats per point (5 in nuScenes: x, y, z, intensity, ring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file's size is not a whole number of points.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LiDAR sweep not found: {path} (the info's lidar_path under data_root)")
    values = np.fromfile(path, dtype=np.float32)
    if values.size % load_dim:
        raise ValueError(f"LiDAR sweep {path} holds {values.size} float32 values, not a multiple of "
                         f"load_dim={load_dim} (x, y, z, intensity, ring per nuScenes point)")
    return values.reshape(-1, load_dim)[:, :3].astype(np.float64)


def project_depth_maps(points: np.ndarray, cam_from_lidar: np.ndarray, img_shape: tuple[int, int],
                       stride: int, min_depth: float = 0.0,
                       max_depth: Optional[float] = None) -> np.ndarray:
    """Nearest depth per stride cell of every camera (see the module notes).

    Args:
        points: ``(P, 3)`` LiDAR-frame points.
        cam_from_lidar: ``(N, 4, 4)`` ``intrinsics @ extrinsics`` of the N cameras.
        img_shape: ``(H, W)`` of the augmented images.
        stride: pixels per cell.
        min_depth: points at a depth ``<= min_depth`` (behind or too near the camera) are dropped.
        max_depth: points deeper than this are dropped (None: none).

    Returns:
        float32 ``(N, ceil(H / stride), ceil(W / stride))``; 0 in cells without a point.
    """
    height, width = int(img_shape[0]), int(img_shape[1])
    rows, cols = math.ceil(height / stride), math.ceil(width / stride)
    hom = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    cam_points = np.einsum("nij,pj->npi", cam_from_lidar, hom)  # (N, P, 4)
    depth = cam_points[..., 2]
    keep = depth > max(min_depth, 0.0)
    if max_depth is not None:
        keep &= depth <= max_depth
    safe = np.where(keep, depth, 1.0)
    u, v = cam_points[..., 0] / safe, cam_points[..., 1] / safe
    keep &= (u >= 0) & (u < width) & (v >= 0) & (v < height)
    cam, point = np.nonzero(keep)
    cell = (cam * rows + (v[cam, point] // stride).astype(np.int64)) * cols + (
        u[cam, point] // stride).astype(np.int64)
    nearest = np.full(len(cam_from_lidar) * rows * cols, np.inf)
    np.minimum.at(nearest, cell, depth[cam, point])
    nearest[np.isinf(nearest)] = 0.0
    return nearest.reshape(len(cam_from_lidar), rows, cols).astype(np.float32)


@TRANSFORMS.register_module()
class LoadLidarDepthMaps:
    """Load the frame's LiDAR sweep and write ``depth_maps`` float32 ``(N, h, w)``.

    ``(h, w) = (ceil(H / stride), ceil(W / stride))`` of the augmented ``img_shape``: the
    nearest LiDAR depth (metres, camera z) in each cell, 0 where none (see the module notes).
    Put it after ``ResizeCropFlipRotImage`` (it reads the augmented ``intrinsics``) and before
    the formatting steps; collect ``depth_maps`` in ``Collect3D``. Training only: the test
    pipelines stay camera-only.

    Args:
        stride: pixels per cell; 16 matches the stride-16 FPN level of RayDN / StreamPETR.
        min_depth: drop points at a camera depth ``<= min_depth`` metres (behind the camera,
            or on the ego car).
        max_depth: drop points deeper than this (None: keep all).
        load_dim: floats per point of the sweep file (5 in nuScenes).
    """

    def __init__(self, stride: int = 16, min_depth: float = 0.1, max_depth: Optional[float] = None,
                 load_dim: int = NUSCENES_POINT_DIM) -> None:
        if isinstance(stride, bool) or int(stride) != stride or stride <= 0:
            raise ValueError(f"LoadLidarDepthMaps: stride must be a positive int, got {stride!r}")
        if min_depth < 0 or (max_depth is not None and max_depth <= min_depth):
            raise ValueError(f"LoadLidarDepthMaps: need 0 <= min_depth < max_depth, got min_depth="
                             f"{min_depth}, max_depth={max_depth}")
        if load_dim < 3:
            raise ValueError(f"LoadLidarDepthMaps: load_dim must be >= 3 (x, y, z), got {load_dim}")
        self.stride = int(stride)
        self.min_depth = float(min_depth)
        self.max_depth = None if max_depth is None else float(max_depth)
        self.load_dim = int(load_dim)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("lidar_path", "intrinsics", "extrinsics", "img_shape") if k not in results]
        if missing:
            raise KeyError(f"LoadLidarDepthMaps needs {missing} in the results (lidar_path comes from "
                           f"the info's 'lidar_path'); got {sorted(results)}")
        points = read_lidar_points(results["lidar_path"], self.load_dim)
        cam_from_lidar = np.stack([np.asarray(k, dtype=np.float64) @ np.asarray(e, dtype=np.float64)
                                   for k, e in zip(results["intrinsics"], results["extrinsics"])])
        results["depth_maps"] = project_depth_maps(points, cam_from_lidar, results["img_shape"],
                                                   self.stride, self.min_depth, self.max_depth)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(stride={self.stride}, min_depth={self.min_depth}, "
                f"max_depth={self.max_depth}, load_dim={self.load_dim})")
