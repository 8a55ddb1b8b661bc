"""Rigid-body helpers of the generated world, checked against pyquaternion and the devkit."""
from __future__ import annotations

import numpy as np
import pytest
from nuscenes.utils.data_classes import Box
from pyquaternion import Quaternion

from projects.mmdet3d_plugin.datasets.synthetic.geometry import (
    box_corners, footprints, matrix_quaternion, rectangles_overlap, yaw_matrix, yaw_quaternion)


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.5, np.pi])
def test_yaw_quaternion_matches_pyquaternion(yaw: float) -> None:
    q = Quaternion(yaw_quaternion(yaw))
    assert np.allclose(q.rotation_matrix, yaw_matrix(yaw))
    assert np.angle(np.exp(1j * (q.yaw_pitch_roll[0] - yaw))) == pytest.approx(0.0, abs=1e-12)


def test_matrix_quaternion_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = Quaternion(rng.normal(size=4)).normalised
        out = matrix_quaternion(q.rotation_matrix)
        assert out[0] >= 0.0
        assert np.allclose(Quaternion(out).rotation_matrix, q.rotation_matrix, atol=1e-10)


def test_box_corners_match_devkit_box() -> None:
    center, lwh, yaw = np.array([[3.0, -2.0, 0.8]]), np.array([[4.5, 1.9, 1.6]]), np.array([0.6])
    ours = box_corners(center, lwh, yaw)[0]
    devkit = Box(center[0], [1.9, 4.5, 1.6], Quaternion(axis=[0, 0, 1], angle=0.6)).corners().T
    assert sorted(map(tuple, np.round(ours, 9))) == sorted(map(tuple, np.round(devkit, 9)))
    front = ours[[0, 3, 4, 7]].mean(axis=0) - center[0]
    assert np.allclose(front / np.linalg.norm(front), [np.cos(0.6), np.sin(0.6), 0.0])


def test_rectangles_overlap() -> None:
    a = footprints(np.array([0.0, 0.0]), np.array([4.0, 2.0]), np.array(0.0))
    touching_corner = footprints(np.array([4.1, 2.1]), np.array([4.0, 2.0]), np.array(0.0))
    rotated_hit = footprints(np.array([2.5, 1.5]), np.array([2.0, 2.0]), np.array(np.pi / 4))
    far = footprints(np.array([0.0, 5.0]), np.array([4.0, 2.0]), np.array(1.0))
    both = np.stack([touching_corner, rotated_hit, far])
    assert rectangles_overlap(a[None], both).tolist() == [False, True, False]
