"""Ground truth of info files as perfect predictions (the evaluation chain's sanity check).

Each annotated box of an info (``gt_boxes`` (M, 7) ``x, y, z, l, w, h, yaw`` in the LiDAR
frame, ``gt_velocity`` (M, 2), ``gt_names`` (M,)) becomes a prediction with score 1 in the
model's output format, so it can go through the same submission writer and evaluator as a
detector's output. Through a correct chain it scores mAP = NDS = 1.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...core.bbox.box_layout import BOX_DIM, VX, VY

GT_KEYS = ("gt_boxes", "gt_names", "gt_velocity")


def _evaluated_mask(info: Mapping[str, Any], names: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """(M,) bool: boxes of a known class that the devkit keeps (some LiDAR or radar point)."""
    keep = np.isin(names, list(class_names))
    if "num_lidar_pts" in info:
        points = np.asarray(info["num_lidar_pts"]) + np.asarray(info.get("num_radar_pts", 0))
        keep &= points > 0
    return keep


def gt_to_prediction(info: Mapping[str, Any], class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The ground truth of one info as a score-1 prediction.

    Boxes whose name is not in ``class_names`` are dropped, and so are boxes without any
    LiDAR or radar point (``num_lidar_pts + num_radar_pts == 0``): the devkit removes those
    from the ground truth, so predicting them would count false positives. An unknown
    velocity (NaN, an object annotated only once) becomes 0.

    Args:
        info: an annotated info dict (``gt_boxes``, ``gt_names``, ``gt_velocity``, and
            optionally ``num_lidar_pts`` / ``num_radar_pts``).
        class_names: the classes; labels index them.

    Returns:
        ``boxes_3d`` (K, 9) float64 box layout, ``scores_3d`` (K,) ones, ``labels_3d`` (K,) int64.

    Raises:
        KeyError: the info has no ground truth.
    """
    missing = [key for key in GT_KEYS if key not in info]
    if missing:
        raise KeyError(
            f"info of sample {info.get('token', '<no token>')!r} lacks {missing}; "
            "ground truth needs an annotated split (train/val infos)"
        )
    names = np.asarray(info["gt_names"]).reshape(-1)
    keep = _evaluated_mask(info, names, class_names)
    boxes = np.zeros((int(keep.sum()), BOX_DIM), dtype=np.float64)
    boxes[:, :VX] = np.asarray(info["gt_boxes"], dtype=np.float64).reshape(-1, 7)[keep]
    velocity = np.asarray(info["gt_velocity"], dtype=np.float64).reshape(-1, 2)[keep]
    boxes[:, [VX, VY]] = np.nan_to_num(velocity, nan=0.0)
    label_of = {name: index for index, name in enumerate(class_names)}
    labels = np.array([label_of[name] for name in names[keep]], dtype=np.int64)
    return {"boxes_3d": boxes, "scores_3d": np.ones(len(boxes)), "labels_3d": labels}


def gt_to_predictions(
    infos: Sequence[Mapping[str, Any]], class_names: Sequence[str]
) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """The ground truth of every info as predictions, with their sample tokens.

    Args:
        infos: annotated info dicts.
        class_names: the classes; labels index them.

    Returns:
        ``(predictions, sample_tokens)``, one entry per info (see :func:`gt_to_prediction`).
    """
    predictions = [gt_to_prediction(info, class_names) for info in infos]
    return predictions, [info["token"] for info in infos]
