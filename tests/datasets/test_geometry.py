"""Pose helpers: quaternion / matrix poses, inverses, intrinsics padding."""
from __future__ import annotations

import numpy as np
import pytest
from pyquaternion import Quaternion

from projects.mmdet3d_plugin.datasets.geometry import (
    intrinsic_matrix,
    invert_pose,
    pose_matrix,
    rotation_matrix,
    transform_points,
)


def test_pose_from_quaternion_and_matrix_agree_and_invert() -> None:
    quaternion = Quaternion(axis=[0.2, -0.3, 1.0], angle=0.7)
    translation = [411.3, 1180.9, 1.2]
    from_quaternion = pose_matrix(list(quaternion), translation)
    from_matrix = pose_matrix(quaternion.rotation_matrix, translation)
    np.testing.assert_allclose(from_quaternion, from_matrix)
    np.testing.assert_allclose(invert_pose(from_quaternion) @ from_quaternion, np.eye(4), atol=1e-12)
    points = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 0.0]])
    expected = np.array([quaternion.rotate(p) for p in points]) + translation
    np.testing.assert_allclose(transform_points(from_quaternion, points), expected)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="quaternion"):
        rotation_matrix([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="cam_intrinsic"):
        intrinsic_matrix(np.eye(4))
    padded = intrinsic_matrix([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert padded.shape == (4, 4) and padded[3, 3] == 1 and padded[0, 2] == 320
