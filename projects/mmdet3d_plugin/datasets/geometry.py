"""Rigid transforms between the nuScenes frames (sensor, ego, global) as 4x4 matrices.

nuScenes stores a pose as a translation ``(3,)`` and a rotation quaternion ``(w, x, y, z)``;
info files store some rotations as 3x3 matrices. Every helper here works in float64 and
maps column vectors: ``p_to = T @ p_from`` with ``p`` homogeneous ``(4,)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pyquaternion import Quaternion


def rotation_matrix(rotation: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation as a 3x3 matrix.

    Args:
        rotation: a quaternion ``(w, x, y, z)`` (4,) or a rotation matrix (3, 3).

    Returns:
        (3, 3) float64 rotation matrix.
    """
    array = np.asarray(rotation, dtype=np.float64)
    if array.shape == (3, 3):
        return array
    if array.shape == (4,):
        return Quaternion(array).rotation_matrix
    raise ValueError(
        f"rotation must be a quaternion (w, x, y, z) of shape (4,) or a (3, 3) matrix, "
        f"got shape {array.shape}"
    )


def pose_matrix(rotation: Sequence[float] | np.ndarray, translation: Sequence[float] | np.ndarray) -> np.ndarray:
    """Homogeneous transform from a rotation and a translation.

    Args:
        rotation: quaternion ``(w, x, y, z)`` (4,) or rotation matrix (3, 3).
        translation: (3,).

    Returns:
        (4, 4) float64 matrix ``[[R, t], [0, 1]]``.
    """
    matrix = np.eye(4, dtype=np.float64)
    matrix[:3, :3] = rotation_matrix(rotation)
    matrix[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return matrix


def invert_pose(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform ``[[R, t], [0, 1]]`` as ``[[R^T, -R^T t], [0, 1]]``.

    Args:
        matrix: (4, 4) rigid transform.

    Returns:
        (4, 4) float64 inverse.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    inverse = np.eye(4, dtype=np.float64)
    rotation_t = matrix[:3, :3].T
    inverse[:3, :3] = rotation_t
    inverse[:3, 3] = -rotation_t @ matrix[:3, 3]
    return inverse


def intrinsic_matrix(intrinsic: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """A 3x3 camera matrix padded into the top-left of a 4x4 identity.

    Args:
        intrinsic: (3, 3) camera matrix.

    Returns:
        (4, 4) float64 matrix.
    """
    array = np.asarray(intrinsic, dtype=np.float64)
    if array.shape != (3, 3):
        raise ValueError(f"cam_intrinsic must have shape (3, 3), got {array.shape}")
    padded = np.eye(4, dtype=np.float64)
    padded[:3, :3] = array
    return padded


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to 3D points.

    Args:
        matrix: (4, 4).
        points: (M, 3).

    Returns:
        (M, 3) float64 transformed points (no perspective division).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return points @ matrix[:3, :3].T + matrix[:3, 3]
