"""Predictions → nuScenes submission: structure, values, validation, atomic writing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from nuscenes.eval.detection.data_classes import DetectionBox
from pyquaternion import Quaternion

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.evaluation.lidar_to_global import lidar_boxes_to_global
from projects.mmdet3d_plugin.datasets.evaluation.submission import (
    SUBMISSION_META,
    check_submission,
    results_to_submission,
    save_submission,
)


def make_info(token: str, ego_x: float) -> dict:
    return {
        "token": token,
        "lidar2ego_translation": [0.9, 0.0, 1.8],
        "lidar2ego_rotation": list(Quaternion(axis=[0, 0, 1], radians=-np.pi / 2).elements),
        "ego2global_translation": [ego_x, 50.0, 0.0],
        "ego2global_rotation": list(Quaternion(axis=[0, 0, 1], radians=0.4).elements),
    }


@pytest.fixture()
def infos() -> list[dict]:
    return [make_info("tok-a", 100.0), make_info("tok-b", 130.0)]


@pytest.fixture()
def predictions() -> list[dict]:
    boxes = torch.tensor(
        [
            [5.0, 1.0, -0.5, 4.5, 1.9, 1.6, 0.3, 3.0, 0.0],  # moving car
            [-8.0, 2.0, -1.0, 0.8, 0.7, 1.8, 1.0, 0.05, 0.0],  # standing pedestrian
        ]
    )
    first = {"boxes_3d": boxes, "scores_3d": torch.tensor([0.9, 0.4]), "labels_3d": torch.tensor([0, 8])}
    empty = {"boxes_3d": torch.zeros(0, 9), "scores_3d": torch.zeros(0), "labels_3d": torch.zeros(0, dtype=torch.long)}
    return [first, empty]


def test_submission_structure_and_values(infos: list[dict], predictions: list[dict]) -> None:
    submission = results_to_submission(predictions, ["tok-a", "tok-b"], infos, NUSCENES_CLASSES)

    assert submission["meta"] == SUBMISSION_META
    assert submission["meta"]["use_camera"] is True and submission["meta"]["use_lidar"] is False
    assert set(submission["results"]) == {"tok-a", "tok-b"}
    assert submission["results"]["tok-b"] == []
    car, pedestrian = submission["results"]["tok-a"]
    world = lidar_boxes_to_global(predictions[0]["boxes_3d"].numpy(), infos[0])
    np.testing.assert_allclose(car["translation"], world.translation[0])
    np.testing.assert_allclose(car["size"], [1.9, 4.5, 1.6], rtol=1e-6)
    np.testing.assert_allclose(car["rotation"], world.rotation[0])
    assert np.linalg.norm(car["velocity"]) == pytest.approx(3.0)
    assert (car["detection_name"], car["attribute_name"]) == ("car", "vehicle.moving")
    assert (pedestrian["detection_name"], pedestrian["attribute_name"]) == ("pedestrian", "pedestrian.standing")
    assert car["detection_score"] == pytest.approx(0.9) and type(car["detection_score"]) is float
    for entry in submission["results"]["tok-a"]:
        DetectionBox.deserialize(json.loads(json.dumps(entry)))  # the devkit's own validation


def test_numpy_predictions_are_accepted(infos: list[dict], predictions: list[dict]) -> None:
    as_numpy = [{key: value.numpy() for key, value in p.items()} for p in predictions]
    submission = results_to_submission(as_numpy, ["tok-a", "tok-b"], infos, NUSCENES_CLASSES)
    assert len(submission["results"]["tok-a"]) == 2


def test_missing_prediction_for_an_info_is_an_error(infos: list[dict], predictions: list[dict]) -> None:
    with pytest.raises(ValueError, match=r"1 sample token\(s\).*'tok-b'.*of the 2 infos"):
        results_to_submission(predictions[:1], ["tok-a"], infos, NUSCENES_CLASSES)


def test_prediction_without_info_is_an_error(infos: list[dict], predictions: list[dict]) -> None:
    with pytest.raises(KeyError, match="tok-z"):
        results_to_submission(predictions, ["tok-a", "tok-z"], infos, NUSCENES_CLASSES)


def test_malformed_predictions_are_rejected(infos: list[dict], predictions: list[dict]) -> None:
    tokens = ["tok-a", "tok-b"]
    with pytest.raises(ValueError, match="labels_3d must lie in"):
        bad = dict(predictions[0], labels_3d=torch.tensor([0, 10]))
        results_to_submission([bad, predictions[1]], tokens, infos, NUSCENES_CLASSES)
    with pytest.raises(ValueError, match="NaN"):
        boxes = predictions[0]["boxes_3d"].clone()
        boxes[0, 0] = float("nan")
        results_to_submission([dict(predictions[0], boxes_3d=boxes), predictions[1]], tokens, infos, NUSCENES_CLASSES)
    with pytest.raises(ValueError, match=r"\(K, 9\)"):
        results_to_submission([dict(predictions[0], boxes_3d=torch.zeros(2, 7)), predictions[1]], tokens, infos,
                              NUSCENES_CLASSES)
    with pytest.raises(ValueError, match="equal lengths"):
        short = dict(predictions[0], scores_3d=torch.tensor([0.5]))
        results_to_submission([short, predictions[1]], tokens, infos, NUSCENES_CLASSES)
    with pytest.raises(KeyError, match="scores_3d"):
        missing = {"boxes_3d": predictions[0]["boxes_3d"], "labels_3d": predictions[0]["labels_3d"]}
        results_to_submission([missing, predictions[1]], tokens, infos, NUSCENES_CLASSES)
    with pytest.raises(ValueError, match="duplicate"):
        results_to_submission(predictions, ["tok-a", "tok-a"], infos, NUSCENES_CLASSES)
    with pytest.raises(ValueError, match="not nuScenes detection classes"):
        results_to_submission(predictions, tokens, infos, ("car", "van"))


def test_check_submission_names_missing_tokens() -> None:
    submission = {"meta": dict(SUBMISSION_META), "results": {"a": [], "b": []}}
    check_submission(submission, ["a", "b"], max_boxes_per_sample=500)
    with pytest.raises(ValueError, match=r"misses 2 sample token\(s\).*of the 4 samples"):
        check_submission(submission, ["a", "b", "c", "d"], max_boxes_per_sample=500)
    with pytest.raises(ValueError, match=r"1 sample token\(s\) \(e.g. 'b'\) that are not samples of the split"):
        check_submission(submission, ["a"], max_boxes_per_sample=500)
    with pytest.raises(KeyError, match="meta"):
        check_submission({"results": {}}, [], max_boxes_per_sample=500)
    crowded = {"meta": {}, "results": {"a": [{}] * 3}}
    with pytest.raises(ValueError, match="more than 2 boxes"):
        check_submission(crowded, ["a"], max_boxes_per_sample=2)


def test_save_submission_is_atomic_and_round_trips(
    tmp_path: Path, infos: list[dict], predictions: list[dict]
) -> None:
    submission = results_to_submission(predictions, ["tok-a", "tok-b"], infos, NUSCENES_CLASSES)
    path = save_submission(submission, tmp_path / "sub" / "results_nusc.json")

    assert json.loads(path.read_text()) == submission
    assert [p.name for p in path.parent.iterdir()] == ["results_nusc.json"]
    with pytest.raises(ValueError):
        save_submission({"meta": {}, "results": {"a": [{"velocity": [float("nan"), 0.0]}]}}, path)
    assert json.loads(path.read_text()) == submission, "a failed write must leave the old file intact"
    assert [p.name for p in path.parent.iterdir()] == ["results_nusc.json"]
