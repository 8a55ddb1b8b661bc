"""ObjectRangeFilter and ObjectNameFilter keep the per-object fields consistent."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.pipelines.object_filters import ObjectNameFilter, ObjectRangeFilter

PCR = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


def _results() -> dict:
    boxes = np.zeros((5, 9), dtype=np.float32)
    boxes[:, 0] = [0.0, 51.2, -60.0, 10.0, 20.0]
    boxes[:, 1] = [0.0, 0.0, 0.0, -51.0, 5.0]
    boxes[:, 2] = [0.0, 0.0, 0.0, 0.0, 9.0]  # z is not tested
    boxes[:, 6] = [0.0, 1.0, 2.0, 4.0, -4.0]
    return dict(gt_bboxes_3d=boxes, gt_labels_3d=np.array([0, 1, 2, -1, 9]),
                gt_names=np.array(["car", "truck", "bus", "animal", "traffic_cone"]))


def test_range_filter_keeps_strictly_inside_and_wraps_yaw() -> None:
    out = ObjectRangeFilter(point_cloud_range=PCR)(_results())
    assert out["gt_names"].tolist() == ["car", "animal", "traffic_cone"]
    assert out["gt_labels_3d"].tolist() == [0, -1, 9]
    np.testing.assert_allclose(out["gt_bboxes_3d"][:, 6], [0.0, 4.0 - 2 * np.pi, -4.0 + 2 * np.pi], atol=1e-6)
    assert (out["gt_bboxes_3d"][:, 6] >= -np.pi).all() and (out["gt_bboxes_3d"][:, 6] < np.pi).all()


def test_name_filter_keeps_labels_of_the_classes() -> None:
    out = ObjectNameFilter(classes=["car", "truck", "bus"])(_results())
    assert out["gt_labels_3d"].tolist() == [0, 1, 2]
    assert out["gt_names"].tolist() == ["car", "truck", "bus"]
    assert out["gt_bboxes_3d"].shape == (3, 9)


def test_filters_validate_arguments() -> None:
    with pytest.raises(ValueError, match="point_cloud_range"):
        ObjectRangeFilter(point_cloud_range=[0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="classes"):
        ObjectNameFilter(classes="car")
    with pytest.raises(KeyError, match="gt_bboxes_3d"):
        ObjectRangeFilter(point_cloud_range=PCR)({})
