"""Move boxes from the LIDAR_TOP frame of a sample to the nuScenes global frame.

A box in the project's layout ``(x, y, z, l, w, h, yaw, vx, vy)`` (LiDAR frame, geometric
centre) becomes what a nuScenes submission stores: the global centre, the size as
``(w, l, h)``, the global orientation as a quaternion ``(w, x, y, z)`` and the global planar
velocity. The chain is LiDAR → ego (``lidar2ego_*``) → global (``ego2global_*``), the same
rotations nuScenes' ``Box.rotate`` / ``Box.translate`` apply, done for all boxes of a sample
at once.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyquaternion import Quaternion

from ...core.bbox.box_layout import BOX_DIM, H, L, VX, VY, W, X, Y, YAW, Z

POSE_KEYS = (
    "lidar2ego_translation",
    "lidar2ego_rotation",
    "ego2global_translation",
    "ego2global_rotation",
)


@dataclass(frozen=True)
class GlobalBoxes:
    """Boxes in the nuScenes global frame, in the submission's conventions.

    Attributes:
        translation: (K, 3) geometric centres, metres.
        size: (K, 3) ``(w, l, h)``, metres.
        rotation: (K, 4) orientation quaternions ``(w, x, y, z)``.
        velocity: (K, 2) planar velocities ``(vx, vy)``, m/s.
    """

    translation: np.ndarray
    size: np.ndarray
    rotation: np.ndarray
    velocity: np.ndarray


def lidar_to_global_pose(info: Mapping[str, Any]) -> tuple[Quaternion, np.ndarray]:
    """The rigid transform LiDAR → global of one sample.

    Args:
        info: a sample's info dict with ``lidar2ego_translation/rotation`` and
            ``ego2global_translation/rotation`` (quaternions ``w, x, y, z``).

    Returns:
        ``(rotation, translation)`` with ``p_global = rotation.rotate(p_lidar) + translation``;
        ``translation`` is (3,) float64.

    Raises:
        KeyError: a pose field is missing from ``info``.
    """
    missing = [key for key in POSE_KEYS if key not in info]
    if missing:
        token = info.get("token", "<no token>")
        raise KeyError(f"info of sample {token!r} lacks the pose fields {missing}")
    lidar2ego = Quaternion(info["lidar2ego_rotation"])
    ego2global = Quaternion(info["ego2global_rotation"])
    rotation = ego2global * lidar2ego
    translation = ego2global.rotation_matrix @ np.asarray(
        info["lidar2ego_translation"], dtype=np.float64
    ) + np.asarray(info["ego2global_translation"], dtype=np.float64)
    return rotation, translation


def compose_with_yaw(rotation: Quaternion, yaw: np.ndarray) -> np.ndarray:
    """Quaternions ``rotation * Quaternion(axis=[0, 0, 1], radians=yaw)`` for many yaws.

    Args:
        rotation: the fixed left factor.
        yaw: (K,) angles about +z, radians.

    Returns:
        (K, 4) quaternions ``(w, x, y, z)`` (the Hamilton product, written out for a right
        factor ``(cos(yaw/2), 0, 0, sin(yaw/2))``).
    """
    w1, x1, y1, z1 = rotation.elements
    half = np.asarray(yaw, dtype=np.float64) / 2.0
    w2, z2 = np.cos(half), np.sin(half)
    return np.stack(
        [w1 * w2 - z1 * z2, x1 * w2 + y1 * z2, y1 * w2 - x1 * z2, w1 * z2 + z1 * w2], axis=-1
    )


def lidar_boxes_to_global(boxes: np.ndarray, info: Mapping[str, Any]) -> GlobalBoxes:
    """Move one sample's boxes from its LiDAR frame to the global frame.

    Args:
        boxes: (K, 9) box layout ``(x, y, z, l, w, h, yaw, vx, vy)`` in the sample's
            LIDAR_TOP frame.
        info: the sample's info dict (see :func:`lidar_to_global_pose`).

    Returns:
        The boxes in the global frame (:class:`GlobalBoxes`, float64 arrays).

    Raises:
        ValueError: ``boxes`` is not (K, 9).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != BOX_DIM:
        raise ValueError(f"boxes must be (K, {BOX_DIM}) in the box layout, got {boxes.shape}")
    rotation, translation = lidar_to_global_pose(info)
    matrix = rotation.rotation_matrix
    centres = boxes[:, [X, Y, Z]] @ matrix.T + translation
    velocity = np.zeros((len(boxes), 3))
    velocity[:, :2] = boxes[:, [VX, VY]]
    velocity = velocity @ matrix.T
    return GlobalBoxes(
        translation=centres,
        size=boxes[:, [W, L, H]].copy(),
        rotation=compose_with_yaw(rotation, boxes[:, YAW]),
        velocity=velocity[:, :2],
    )
