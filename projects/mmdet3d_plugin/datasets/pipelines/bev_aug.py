"""BEV augmentation: a random rotation about +z, a uniform scale and a translation of the
LiDAR frame, applied consistently to the 3D boxes, ``lidar2img`` and the ego poses.

The augmentation is ``p_aug = A @ p`` with ``A = [[s R(theta), t], [0, 1]]``. ``lidar2img``
and ``ego_pose`` take LiDAR points as input and are right-multiplied by ``A^-1``;
``ego_pose_inv`` is left-multiplied by ``A``; so ``lidar2img_aug @ p_aug == lidar2img @ p`` and
``ego_pose_aug @ p_aug == ego_pose @ p`` (the global point).

``extrinsics`` (LiDAR -> camera) and ``intrinsics`` are left as they are, as upstream's
``GlobalRotScaleTransImage`` (StreamPETR / RayDN ``transform_3d.py``) does. After this step
``lidar2img == intrinsics @ extrinsics @ A^-1``, not ``intrinsics @ extrinsics``: the
extrinsics stay the calibrated camera rig, so RayDN's camera embedding (``fx``, ``fy`` and
``extrinsics[:3, :4]``) sees the same rig in training as at test time, while the projection
used for geometry follows the augmented frame. Consequently the step must come after
``ResizeCropFlipRotImage``, which rebuilds ``lidar2img`` from ``intrinsics @ extrinsics`` (the
upstream order).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core.bbox.box_layout import L, VX, VY, X, YAW, Z
from . import sampling
from .object_filters import limit_yaw
from ...registry import TRANSFORMS


def bev_aug_matrix(angle: float, scale: float, translation: Sequence[float]) -> np.ndarray:
    """``(4, 4)`` float64 ``A``: rotate by ``angle`` (rad, counter-clockwise about +z), scale, translate."""
    cos, sin = np.cos(angle), np.sin(angle)
    mat = np.eye(4)
    mat[:3, :3] = scale * np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    mat[:3, 3] = np.asarray(translation, dtype=np.float64)
    return mat


def transform_boxes_3d(boxes: np.ndarray, aug: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """Apply the BEV augmentation to boxes ``(M, 9)`` (box layout); returns float32 ``(M, 9)``.

    Centres go through ``aug``; sizes and velocities are scaled; velocities rotated; yaw
    gains ``angle`` (wrapped into ``[-pi, pi)``).
    """
    out = np.asarray(boxes, dtype=np.float64).copy()
    out[:, X:Z + 1] = out[:, X:Z + 1] @ aug[:3, :3].T + aug[:3, 3]
    out[:, L:L + 3] *= scale
    out[:, [VX, VY]] = out[:, [VX, VY]] @ aug[:2, :2].T
    out[:, YAW] = limit_yaw(out[:, YAW] + angle)
    return out.astype(np.float32)


@TRANSFORMS.register_module()
class GlobalRotScaleTransImage:
    """Random BEV rotation, scaling and translation of the sample (training only).

    Updates ``gt_bboxes_3d`` (when present), ``lidar2img``, ``ego_pose`` and ``ego_pose_inv``;
    ``extrinsics`` and ``intrinsics`` keep the calibrated rig (upstream; see the module notes).

    Args:
        rot_range: ``[min, max]`` rotation angle in radians.
        scale_ratio_range: ``[min, max]`` uniform scale factor.
        translation_std: per-axis standard deviation (metres) of a normal translation.
        reverse_angle: negate the drawn angle. Upstream needs it to make its box rotation
            agree with its matrix rotation; here boxes and matrices always agree, so it only
            mirrors the (symmetric) angle distribution. Accepted for config compatibility.
        training: when False the step leaves the sample unchanged.
    """

    def __init__(
        self,
        rot_range: Sequence[float] = (-0.3925, 0.3925),
        scale_ratio_range: Sequence[float] = (0.95, 1.05),
        translation_std: Sequence[float] = (0.0, 0.0, 0.0),
        reverse_angle: bool = False,
        training: bool = True,
    ) -> None:
        if len(rot_range) != 2 or len(scale_ratio_range) != 2 or len(translation_std) != 3:
            raise ValueError(
                "rot_range and scale_ratio_range need 2 values and translation_std 3; got "
                f"{list(rot_range)}, {list(scale_ratio_range)}, {list(translation_std)}"
            )
        if min(scale_ratio_range) <= 0:
            raise ValueError(f"scale_ratio_range must be positive, got {list(scale_ratio_range)}")
        self.rot_range = [float(v) for v in rot_range]
        self.scale_ratio_range = [float(v) for v in scale_ratio_range]
        self.translation_std = [float(v) for v in translation_std]
        self.reverse_angle = reverse_angle
        self.training = training

    def sample_augmentation(self) -> tuple[float, float, np.ndarray]:
        """Draw ``(angle, scale, translation (3,))``."""
        angle = sampling.uniform(*self.rot_range)
        if self.reverse_angle:
            angle = -angle
        scale = sampling.uniform(*self.scale_ratio_range)
        return angle, scale, sampling.normal(self.translation_std)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if not self.training:
            return results
        angle, scale, translation = self.sample_augmentation()
        aug = bev_aug_matrix(angle, scale, translation)
        aug_inv = np.linalg.inv(aug)
        results["lidar2img"] = [np.asarray(m, dtype=np.float64) @ aug_inv for m in results["lidar2img"]]
        results["ego_pose"] = np.asarray(results["ego_pose"], dtype=np.float64) @ aug_inv
        results["ego_pose_inv"] = aug @ np.asarray(results["ego_pose_inv"], dtype=np.float64)
        if "gt_bboxes_3d" in results:
            results["gt_bboxes_3d"] = transform_boxes_3d(results["gt_bboxes_3d"], aug, angle, scale)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rot_range={self.rot_range}, "
            f"scale_ratio_range={self.scale_ratio_range}, translation_std={self.translation_std}, "
            f"reverse_angle={self.reverse_angle}, training={self.training})"
        )
