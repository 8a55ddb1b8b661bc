"""Text table of the metrics."""
from __future__ import annotations

import pytest

from projects.mmdet3d_plugin.datasets.evaluation.metrics_table import format_metrics_table


def make_metrics() -> dict:
    tp = {"ATE": 0.1, "ASE": 0.2, "AOE": 0.3, "AVE": 0.4, "AAE": 0.5}
    return {
        "NDS": 0.55, "mAP": 0.45, "mATE": 0.61, "mASE": 0.27, "mAOE": 0.41, "mAVE": 0.26, "mAAE": 0.2,
        "per_class": {
            "car": {"AP": 0.6, "AP@0.5": 0.3, "AP@1.0": 0.5, "AP@2.0": 0.7, "AP@4.0": 0.9, **tp},
            "traffic_cone": {"AP": 0.5, "AP@0.5": 0.5, "AP@1.0": 0.5, "AP@2.0": 0.5, "AP@4.0": 0.5,
                             **tp, "AOE": None, "AVE": None, "AAE": None},
        },
        "eval_set": "mini_val", "version": "v1.0-mini", "config_name": "detection_cvpr_2019",
    }


def test_table_shows_summary_classes_and_undefined_errors() -> None:
    lines = format_metrics_table(make_metrics()).splitlines()

    assert "mini_val" in lines[0] and "v1.0-mini" in lines[0]
    assert "mAP 0.4500" in lines[1] and "NDS 0.5500" in lines[1] and "mAAE 0.2000" in lines[1]
    header = lines[3].split()
    assert header == ["class", "AP", "AP@0.5", "AP@1.0", "AP@2.0", "AP@4.0", "ATE", "ASE", "AOE", "AVE", "AAE"]
    car = lines[4].split()
    assert car[0] == "car" and car[1:3] == ["0.6000", "0.3000"]
    cone = lines[5].split()
    assert cone[0] == "traffic_cone" and cone[-3:] == ["n/a", "n/a", "n/a"]


def test_missing_metric_is_named() -> None:
    metrics = make_metrics()
    del metrics["NDS"]
    with pytest.raises(KeyError, match="NDS"):
        format_metrics_table(metrics)
