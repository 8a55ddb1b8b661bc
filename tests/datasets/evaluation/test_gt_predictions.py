"""Ground truth of infos as score-1 predictions."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.evaluation.gt_predictions import gt_to_prediction, gt_to_predictions


def make_info() -> dict:
    return {
        "token": "tok",
        "gt_boxes": np.array(
            [
                [1.0, 2.0, 0.5, 4.0, 2.0, 1.5, 0.1],
                [3.0, 4.0, 0.5, 0.8, 0.6, 1.7, 0.2],
                [5.0, 6.0, 0.5, 1.0, 1.0, 1.0, 0.3],
                [7.0, 8.0, 0.5, 0.4, 0.4, 1.0, 0.4],
            ]
        ),
        "gt_names": np.array(["car", "pedestrian", "animal", "traffic_cone"]),
        "gt_velocity": np.array([[1.0, -1.0], [np.nan, np.nan], [0.0, 0.0], [0.0, 0.0]]),
        "num_lidar_pts": np.array([10, 0, 3, 0]),
        "num_radar_pts": np.array([0, 2, 0, 0]),
    }


def test_keeps_known_classes_with_points_and_fills_the_layout() -> None:
    prediction = gt_to_prediction(make_info(), NUSCENES_CLASSES)

    # animal: not a class; traffic cone: no LiDAR or radar point (the devkit drops it from GT).
    np.testing.assert_array_equal(prediction["labels_3d"], [0, 8])
    np.testing.assert_array_equal(prediction["scores_3d"], [1.0, 1.0])
    np.testing.assert_allclose(prediction["boxes_3d"][0], [1.0, 2.0, 0.5, 4.0, 2.0, 1.5, 0.1, 1.0, -1.0])
    np.testing.assert_allclose(prediction["boxes_3d"][1, 7:], [0.0, 0.0])  # unknown velocity -> 0


def test_without_point_counts_every_known_box_is_kept() -> None:
    info = make_info()
    del info["num_lidar_pts"], info["num_radar_pts"]
    assert gt_to_prediction(info, NUSCENES_CLASSES)["labels_3d"].tolist() == [0, 8, 9]


def test_many_infos_and_tokens() -> None:
    other = dict(make_info(), token="tok2")
    predictions, tokens = gt_to_predictions([make_info(), other], NUSCENES_CLASSES)
    assert tokens == ["tok", "tok2"] and len(predictions) == 2


def test_unannotated_info_is_an_error() -> None:
    with pytest.raises(KeyError, match="annotated split"):
        gt_to_prediction({"token": "test-sample"}, NUSCENES_CLASSES)
