"""Filters of the 3D annotations: by BEV range and by class.

Both keep every per-object 3D field (``gt_bboxes_3d``, ``gt_labels_3d`` and, when present,
``gt_names`` and ``attr_labels``) consistent. The per-camera 2D annotations are independent
lists (one per camera, from the info file) and are left alone, as upstream.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core import batch_contract as contract
from ...core.bbox.box_layout import X, Y, YAW
from ...registry import TRANSFORMS

PER_OBJECT_3D_KEYS = contract.keys(contract.TARGETS_3D) + ("gt_names", "attr_labels")


def select_objects(results: dict[str, Any], keep: np.ndarray) -> None:
    """Index every per-object 3D field present in ``results`` with the boolean mask ``keep (M,)``."""
    for key in PER_OBJECT_3D_KEYS:
        if key in results:
            results[key] = np.asarray(results[key])[keep]


def limit_yaw(yaw: np.ndarray) -> np.ndarray:
    """Wrap angles into ``[-pi, pi)``; any shape."""
    return yaw - np.floor(yaw / (2 * np.pi) + 0.5) * 2 * np.pi


@TRANSFORMS.register_module()
class ObjectRangeFilter:
    """Keep the objects whose BEV centre lies strictly inside the point-cloud range.

    As in mmdet3d, only ``x`` and ``y`` are tested (``x_min < x < x_max``,
    ``y_min < y < y_max``) and the yaw of the kept boxes is wrapped into ``[-pi, pi)``.

    Args:
        point_cloud_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]`` in metres.
    """

    def __init__(self, point_cloud_range: Sequence[float]) -> None:
        pcr = np.asarray(point_cloud_range, dtype=np.float32)
        if pcr.shape != (6,) or (pcr[3:] <= pcr[:3]).any():
            raise ValueError(
                "point_cloud_range must be [x_min, y_min, z_min, x_max, y_max, z_max] with "
                f"min < max, got {list(point_cloud_range)}"
            )
        self.pcd_range = pcr

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "gt_bboxes_3d" not in results:
            raise KeyError("ObjectRangeFilter needs 'gt_bboxes_3d' (run LoadAnnotations3D first)")
        boxes = results["gt_bboxes_3d"]
        x_min, y_min, _, x_max, y_max, _ = self.pcd_range
        keep = (
            (boxes[:, X] > x_min) & (boxes[:, X] < x_max)
            & (boxes[:, Y] > y_min) & (boxes[:, Y] < y_max)
        )
        select_objects(results, keep)
        results["gt_bboxes_3d"][:, YAW] = limit_yaw(results["gt_bboxes_3d"][:, YAW])
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(point_cloud_range={self.pcd_range.tolist()})"


@TRANSFORMS.register_module()
class ObjectNameFilter:
    """Keep the objects whose label indexes one of ``classes``.

    ``gt_labels_3d`` are indices into the dataset's class list (-1 for other categories), as
    in mmdet3d; an object is kept when ``0 <= label < len(classes)``.

    Args:
        classes: the class names of the config.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        if isinstance(classes, str) or len(classes) == 0:
            raise ValueError(f"classes must be a non-empty list of class names, got {classes!r}")
        self.classes = list(classes)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "gt_labels_3d" not in results:
            raise KeyError("ObjectNameFilter needs 'gt_labels_3d' (run LoadAnnotations3D first)")
        labels = np.asarray(results["gt_labels_3d"])
        keep = (labels >= 0) & (labels < len(self.classes))
        select_objects(results, keep)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(classes={self.classes})"
