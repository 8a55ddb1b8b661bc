"""The official DetectionEval on the generated world: ground truth, perturbed and empty submissions."""
from __future__ import annotations

import json
import math
import pickle
import runpy
from pathlib import Path

import numpy as np
import pytest
from pyquaternion import Quaternion

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES, X, YAW
from projects.mmdet3d_plugin.datasets.evaluation.gt_predictions import gt_to_predictions
from projects.mmdet3d_plugin.datasets.evaluation.metrics_table import format_metrics_table
from projects.mmdet3d_plugin.datasets.evaluation.nusc_eval import (
    default_eval_set,
    evaluate_submission,
    load_nuscenes,
    split_sample_tokens,
)
from projects.mmdet3d_plugin.datasets.evaluation.submission import results_to_submission, save_submission
from projects.mmdet3d_plugin.paths import REPO_ROOT

VERSION = "v1.0-mini"
TOOL = REPO_ROOT / "tools" / "evaluate_gt.py"


@pytest.fixture(scope="module")
def val_infos(synthetic_infos: dict[str, Path]) -> list[dict]:
    with open(synthetic_infos["val"], "rb") as handle:
        return pickle.load(handle)["infos"]


@pytest.fixture(scope="module")
def nusc(synthetic_world: Path):
    return load_nuscenes(synthetic_world, VERSION)


@pytest.fixture(scope="module")
def gt_run(synthetic_world: Path, synthetic_infos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """tools/evaluate_gt.py run once on the val infos: (metrics, out_dir)."""
    out_dir = tmp_path_factory.mktemp("gt_eval")
    tool = runpy.run_path(str(TOOL), run_name="evaluate_gt")
    metrics = tool["main"](
        ["--data-root", str(synthetic_world), "--version", VERSION,
         "--ann-file", str(synthetic_infos["val"]), "--out-dir", str(out_dir)]
    )
    return metrics, out_dir


def evaluate_modified(val_infos, nusc, synthetic_world, out_dir, modify, render_curves=False) -> dict:
    """Evaluate the ground truth after ``modify(boxes_3d)`` changed every sample's boxes in place."""
    predictions, tokens = gt_to_predictions(val_infos, NUSCENES_CLASSES)
    for prediction in predictions:
        modify(prediction["boxes_3d"])
    submission = results_to_submission(predictions, tokens, val_infos, NUSCENES_CLASSES)
    path = save_submission(submission, out_dir / "results_nusc.json")
    return evaluate_submission(
        path, synthetic_world, VERSION, out_dir=out_dir, nusc=nusc, render_curves=render_curves
    )


def shift_x(boxes: np.ndarray) -> None:
    boxes[:, X] += 2.0


def rotate_quarter_turn(boxes: np.ndarray) -> None:
    boxes[:, YAW] += np.pi / 2


@pytest.fixture(scope="module")
def shifted(val_infos, nusc, synthetic_world, tmp_path_factory) -> dict:
    return evaluate_modified(val_infos, nusc, synthetic_world, tmp_path_factory.mktemp("shifted"), shift_x)


@pytest.fixture(scope="module")
def rotated_run(val_infos, nusc, synthetic_world, tmp_path_factory) -> tuple[dict, Path]:
    out_dir = tmp_path_factory.mktemp("rotated")
    metrics = evaluate_modified(val_infos, nusc, synthetic_world, out_dir, rotate_quarter_turn, render_curves=True)
    return metrics, out_dir


def test_ground_truth_scores_full_marks(gt_run) -> None:
    metrics, _ = gt_run
    assert metrics["mAP"] >= 0.99, format_metrics_table(metrics)
    assert metrics["NDS"] >= 0.99, format_metrics_table(metrics)
    for key in ("mATE", "mASE", "mAOE", "mAVE"):
        assert metrics[key] < 1e-6, format_metrics_table(metrics)


def test_ground_truth_evaluates_every_class(gt_run) -> None:
    metrics, _ = gt_run
    assert set(metrics["per_class"]) == set(NUSCENES_CLASSES)
    for name, entry in metrics["per_class"].items():
        assert all(entry[f"AP@{th}"] >= 0.99 for th in (0.5, 1.0, 2.0, 4.0)), name
        assert entry["ATE"] < 1e-6 and entry["ASE"] < 1e-6, name


STATIONARY_VEHICLE = {"vehicle.stopped", "vehicle.parked"}


def check_attribute(box: dict, annotation: dict, nusc) -> None:
    """The written attribute is the annotated one, up to what speed cannot tell apart.

    A stationary vehicle may be annotated ``vehicle.stopped`` (waiting in a lane) or
    ``vehicle.parked``; the default rule picks one by class, so only that swap is allowed.
    """
    tokens = annotation["attribute_tokens"]
    annotated = nusc.get("attribute", tokens[0])["name"] if tokens else ""
    if box["detection_name"] in ("barrier", "traffic_cone"):
        assert box["attribute_name"] == ""
    elif annotated != box["attribute_name"]:
        assert {annotated, box["attribute_name"]} == STATIONARY_VEHICLE, (annotated, box)


def test_writer_reproduces_every_annotation(gt_run, nusc) -> None:
    """Each written box equals its nuScenes annotation (score ties hide all but one box per class from the TP errors)."""
    _, out_dir = gt_run
    results = json.loads((out_dir / "results_nusc.json").read_text())["results"]
    written = 0
    for token, boxes in results.items():
        annotations = [nusc.get("sample_annotation", a) for a in nusc.get("sample", token)["anns"]]
        for box in boxes:
            distances = [np.linalg.norm(np.subtract(a["translation"], box["translation"])) for a in annotations]
            annotation = annotations[int(np.argmin(distances))]
            assert min(distances) < 1e-6
            np.testing.assert_allclose(box["size"], annotation["size"], atol=1e-6)
            rotation_error = Quaternion.absolute_distance(Quaternion(annotation["rotation"]), Quaternion(box["rotation"]))
            assert rotation_error < 1e-6
            velocity = nusc.box_velocity(annotation["token"])[:2]
            if np.isfinite(velocity).all():
                np.testing.assert_allclose(box["velocity"], velocity, atol=1e-6)
            check_attribute(box, annotation, nusc)
            written += 1
    assert written > 20


def test_files_written(gt_run) -> None:
    metrics, out_dir = gt_run
    assert json.loads((out_dir / "metrics.json").read_text()) == metrics
    summary = json.loads((out_dir / "metrics_summary.json").read_text())
    assert summary["nd_score"] == pytest.approx(metrics["NDS"])
    assert summary["meta"]["use_camera"] is True
    assert (out_dir / "metrics_details.json").is_file()
    assert (out_dir / "results_nusc.json").is_file()
    assert metrics["eval_set"] == "mini_val" and metrics["version"] == VERSION


def test_shift_by_two_metres_costs_precision_and_translation(gt_run, shifted) -> None:
    gt_metrics, _ = gt_run
    per_class = shifted["per_class"].values()
    assert all(entry["AP@0.5"] == 0.0 and entry["AP@1.0"] == 0.0 for entry in per_class)
    # At 4 m most boxes still match (a few swap partners where objects stand close together).
    assert np.mean([entry["AP@4.0"] for entry in per_class]) >= 0.8
    assert shifted["mAP"] <= 0.55
    assert shifted["mATE"] >= 0.99  # ~2 m, or no true positive at the 2 m threshold (error 1)
    assert shifted["NDS"] <= gt_metrics["NDS"] - 0.3


def test_quarter_turn_costs_orientation_only(gt_run, rotated_run) -> None:
    gt_metrics, _ = gt_run
    rotated, _ = rotated_run
    assert rotated["mAP"] >= 0.99
    assert rotated["mAOE"] == pytest.approx(math.pi / 2, abs=1e-3)
    assert rotated["per_class"]["traffic_cone"]["AOE"] is None  # cones have no orientation
    assert rotated["mATE"] < 1e-6 and rotated["mASE"] < 1e-6
    assert rotated["NDS"] == pytest.approx(gt_metrics["NDS"] - 0.1, abs=1e-3)


def test_render_curves_writes_the_devkit_plots(rotated_run) -> None:
    _, out_dir = rotated_run
    plots = {path.name for path in (out_dir / "plots").iterdir()}
    assert {"summary.pdf", "car_pr.pdf", "car_tp.pdf", "dist_pr_2.0.pdf"} <= plots


def test_empty_submission_scores_zero(val_infos, nusc, synthetic_world, tmp_path: Path) -> None:
    submission = {"meta": {"use_camera": True, "use_lidar": False}, "results": {i["token"]: [] for i in val_infos}}
    path = save_submission(submission, tmp_path / "empty.json")

    metrics = evaluate_submission(path, synthetic_world, VERSION, out_dir=tmp_path, nusc=nusc)

    assert metrics["mAP"] == 0.0 and metrics["NDS"] == 0.0
    assert all(entry["AP"] == 0.0 for entry in metrics["per_class"].values())


def test_submission_missing_samples_is_refused(val_infos, nusc, synthetic_world, tmp_path: Path) -> None:
    predictions, tokens = gt_to_predictions(val_infos, NUSCENES_CLASSES)
    submission = results_to_submission(predictions, tokens, val_infos, NUSCENES_CLASSES)
    del submission["results"][tokens[0]]
    path = save_submission(submission, tmp_path / "partial.json")
    with pytest.raises(ValueError, match=rf"misses 1 sample token\(s\).*of the {len(val_infos)} samples"):
        evaluate_submission(path, synthetic_world, VERSION, out_dir=tmp_path, nusc=nusc)


def test_split_tokens_are_the_val_infos(val_infos, nusc) -> None:
    assert sorted(split_sample_tokens(nusc, "mini_val")) == sorted(info["token"] for info in val_infos)


def test_arguments_are_checked(nusc, synthetic_world, tmp_path: Path) -> None:
    assert default_eval_set("v1.0-mini") == "mini_val" and default_eval_set("v1.0-trainval") == "val"
    with pytest.raises(ValueError, match="v1.0-test"):
        default_eval_set("v1.0-test")
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        evaluate_submission(tmp_path / "nothing.json", synthetic_world, VERSION, out_dir=tmp_path, nusc=nusc)
    (tmp_path / "sub.json").write_text("{}")
    with pytest.raises(ValueError, match="v1.0-trainval"):
        evaluate_submission(tmp_path / "sub.json", synthetic_world, "v1.0-trainval", out_dir=tmp_path, nusc=nusc)
    with pytest.raises(FileNotFoundError, match="v1.0-mini"):
        load_nuscenes(tmp_path, VERSION)
