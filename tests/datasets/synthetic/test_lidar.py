"""LiDAR ray casting: hits, ranges, frame, and point counting."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.synthetic.cameras import lidar_calibration
from projects.mmdet3d_plugin.datasets.synthetic.lidar import (MAX_RANGE, N_AZIMUTHS, N_RINGS, boxes_in_ego,
                                                             cast_sweep, count_points_in_boxes, ray_directions)
from projects.mmdet3d_plugin.datasets.synthetic.renderer import BoxSet


def _box(x: float, y: float, yaw: float = 0.0) -> BoxSet:
    return BoxSet(center=np.array([[x, y, 0.8]]), lwh=np.array([[4.5, 1.9, 1.6]]), yaw=np.array([yaw]),
                  colour=np.zeros((1, 3)), accent=np.zeros((1, 3)), names=["car"])


def test_ray_pattern() -> None:
    dirs, ring = ray_directions()
    assert dirs.shape == (N_RINGS * N_AZIMUTHS, 3) and np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    elevation = np.rad2deg(np.arcsin(dirs[:, 2]))
    assert elevation.min() == pytest.approx(-30.67) and elevation.max() == pytest.approx(10.67)
    assert np.all(np.diff(elevation[ring == 0]) == 0) and ring.max() == N_RINGS - 1


def test_sweep_hits_ground_and_box_in_lidar_frame() -> None:
    calib = lidar_calibration()
    ego_xy, ego_yaw = np.array([100.0, 50.0]), 0.8
    ahead = ego_xy + 10.0 * np.array([np.cos(ego_yaw), np.sin(ego_yaw)])
    boxes = _box(*ahead, yaw=ego_yaw)
    points = cast_sweep(calib, ego_xy, ego_yaw, boxes, np.array([60.0]), np.random.default_rng(0))
    assert points.dtype == np.float32 and points.shape[1] == 5
    assert np.linalg.norm(points[:, :3], axis=1).max() <= MAX_RANGE + 0.1
    ground = np.abs(points[:, 3] - 60.0) > 20.0  # ground intensity is 12 (asphalt) or 90 (lines)
    assert ground.mean() > 0.8 and np.allclose(points[ground, 2], -calib.translation[2], atol=0.1)
    center, yaw = boxes_in_ego(boxes, ego_xy, ego_yaw)
    count = count_points_in_boxes(points, calib, center, boxes.lwh, yaw)[0]
    on_box = points[~ground]
    assert count == len(on_box) > 100
    # the box is ahead of the ego: +x in the ego frame is +y in the (rotated) LiDAR frame
    rear, front = 10.0 - 2.25 - calib.translation[0], 10.0 + 2.25 - calib.translation[0]
    assert np.all((on_box[:, 1] > rear) & (on_box[:, 1] < front)) and np.all(np.abs(on_box[:, 0]) < 0.95)


def test_box_shadows_ground_behind_it() -> None:
    calib = lidar_calibration()
    free = cast_sweep(calib, np.zeros(2), 0.0, _box(200.0, 0.0), np.array([60.0]), np.random.default_rng(0))
    blocked = cast_sweep(calib, np.zeros(2), 0.0, _box(8.0, 0.0), np.array([60.0]), np.random.default_rng(0))

    def behind(p: np.ndarray) -> int:
        return int(((p[:, 1] > 12.0) & (np.abs(p[:, 0]) < 0.5)).sum())

    assert behind(free) > 20 and behind(blocked) == 0
    assert count_points_in_boxes(free, calib, np.array([[200.0, 0.0, 0.8]]), np.array([[4.5, 1.9, 1.6]]),
                                 np.zeros(1))[0] == 0
