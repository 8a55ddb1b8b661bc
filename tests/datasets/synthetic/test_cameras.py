"""The camera rig and LiDAR mount of the generated world."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.core.bbox.box_layout import CAMERA_NAMES
from projects.mmdet3d_plugin.datasets.synthetic.cameras import lidar_calibration, scene_rig


def _horizontal_fov(calib) -> tuple[float, float]:
    """Yaw of the optical axis and half the horizontal field of view, degrees."""
    forward = calib.rotation[:, 2]
    half = np.rad2deg(np.arctan(calib.image_size[0] / 2 / calib.intrinsic[0, 0]))
    return np.rad2deg(np.arctan2(forward[1], forward[0])), half


def test_intrinsics_scale_with_image_size() -> None:
    full = scene_rig(np.random.default_rng(0), (1600, 900))
    small = scene_rig(np.random.default_rng(0), (800, 450))
    for name in CAMERA_NAMES:
        assert np.allclose(small[name].intrinsic[:2], full[name].intrinsic[:2] / 2)
    assert full["CAM_FRONT"].intrinsic[0, 0] == pytest.approx(1266.4)
    assert full["CAM_BACK"].intrinsic[0, 0] < 0.7 * full["CAM_FRONT"].intrinsic[0, 0]


def test_camera_axes_and_overlap() -> None:
    rig = scene_rig(np.random.default_rng(1), (800, 450))
    yaws = {}
    for name in CAMERA_NAMES:
        rot = rig[name].rotation
        assert np.allclose(rot @ rot.T, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0)
        assert rot[2, 1] < -0.99  # camera y (down) points to ego -z
        assert 1.45 < rig[name].translation[2] < 1.62
        yaws[name] = _horizontal_fov(rig[name])
    ring = ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_FRONT_LEFT"]
    for a, b in zip(ring, ring[1:] + ring[:1]):
        gap = abs(np.angle(np.exp(1j * np.deg2rad(yaws[a][0] - yaws[b][0]))))
        assert np.rad2deg(gap) < yaws[a][1] + yaws[b][1], (a, b)


def test_lidar_is_rotated_against_ego() -> None:
    lidar = lidar_calibration()
    assert lidar.translation[2] == pytest.approx(1.84)
    assert np.allclose(lidar.rotation @ [0.0, 1.0, 0.0], [1.0, 0.0, 0.0])
    assert lidar.intrinsic is None and lidar.image_size is None
