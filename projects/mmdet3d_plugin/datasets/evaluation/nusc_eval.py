"""Run the official nuScenes detection evaluation (the devkit's ``DetectionEval``) on a submission.

The metrics are the devkit's, computed by its unchanged ``DetectionEval``; this module only
prepares the call (the split, the config, a loaded ``NuScenes``), checks the submission
first so errors are readable, and collects the result as a plain dict (saved as
``metrics.json`` next to the devkit's own ``metrics_summary.json`` / ``metrics_details.json``).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .submission import check_submission, save_submission

if TYPE_CHECKING:
    from nuscenes import NuScenes

EVAL_SET_BY_VERSION = {"v1.0-mini": "mini_val", "v1.0-trainval": "val"}
TP_NAMES = {
    "trans_err": "ATE",
    "scale_err": "ASE",
    "orient_err": "AOE",
    "vel_err": "AVE",
    "attr_err": "AAE",
}
PLACEHOLDER_DISTANCE = 1000.0
"""How far beyond the largest class range the no-detection placeholder box lies (m)."""


def default_eval_set(version: str) -> str:
    """The split evaluated for a nuScenes version (``v1.0-mini`` → ``mini_val``, ``v1.0-trainval`` → ``val``).

    Raises:
        ValueError: the version has no annotated evaluation split.
    """
    if version not in EVAL_SET_BY_VERSION:
        raise ValueError(
            f"no default evaluation split for nuScenes version {version!r}; "
            f"expected one of {sorted(EVAL_SET_BY_VERSION)} or pass eval_set explicitly"
        )
    return EVAL_SET_BY_VERSION[version]


#: The tables ``nuscenes.NuScenes`` loads (``<data_root>/<version>/<table>.json``).
NUSCENES_TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor",
                   "ego_pose", "log", "scene", "sample", "sample_data", "sample_annotation", "map")


def check_tables(data_root: str | os.PathLike[str], version: str | None) -> Path:
    """Check, without loading them, that the evaluator can read ``version``'s tables.

    Returns:
        ``data_root/version``.

    Raises:
        ValueError: no version, or one without an evaluation split (:func:`default_eval_set`).
        FileNotFoundError: the table folder or some of its tables are missing (all named).
    """
    if not version:
        raise ValueError("the nuScenes version to evaluate is unknown: the info file has no "
                         "metadata['version']; set the dataset's version (e.g. 'v1.0-mini')")
    default_eval_set(version)
    table_dir = Path(data_root) / version
    missing = [f"{name}.json" for name in NUSCENES_TABLES if not (table_dir / f"{name}.json").is_file()]
    if not table_dir.is_dir() or missing:
        found = "does not exist" if not table_dir.is_dir() else f"lacks {missing}"
        raise FileNotFoundError(
            f"nuScenes tables {table_dir} {found}; the official evaluator needs "
            f"<data_root>/{version}/*.json (data_root={str(data_root)!r}): check data_root and version"
        )
    return table_dir


def load_nuscenes(data_root: str | os.PathLike[str], version: str, verbose: bool = False) -> NuScenes:
    """Load the nuScenes tables of ``version`` under ``data_root`` (the slow part of evaluating).

    Raises:
        FileNotFoundError: ``data_root/version`` does not exist.
    """
    from nuscenes import NuScenes

    table_dir = Path(data_root) / version
    if not table_dir.is_dir():
        raise FileNotFoundError(f"nuScenes tables {table_dir} not found; check data_root and version")
    return NuScenes(version=version, dataroot=str(data_root), verbose=verbose)


def split_sample_tokens(nusc: NuScenes, eval_set: str) -> list[str]:
    """Tokens of every sample of the split ``eval_set`` (the samples a submission must cover).

    ``eval_set`` is a devkit split (``mini_val``, ``val``, ...) or a custom split of the
    version's ``splits.json``, as ``DetectionEval`` accepts.

    Raises:
        ValueError: ``eval_set`` is neither (raised by the devkit).
    """
    from nuscenes.utils.splits import get_scenes_of_split

    scenes = set(get_scenes_of_split(split_name=eval_set, nusc=nusc))
    scene_names = {scene["token"]: scene["name"] for scene in nusc.scene}
    return [sample["token"] for sample in nusc.sample if scene_names[sample["scene_token"]] in scenes]


def _placeholder_detection(nusc: NuScenes, sample_token: str, distance: float) -> dict[str, Any]:
    """A zero-score car ``distance`` metres from the ego vehicle of ``sample_token``."""
    sample = nusc.get("sample", sample_token)
    lidar = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    ego = nusc.get("ego_pose", lidar["ego_pose_token"])["translation"]
    return {
        "sample_token": sample_token,
        "translation": [ego[0] + distance, ego[1], ego[2]],
        "size": [1.0, 1.0, 1.0],
        "rotation": [1.0, 0.0, 0.0, 0.0],
        "velocity": [0.0, 0.0],
        "detection_name": "car",
        "detection_score": 0.0,
        "attribute_name": "",
    }


def _evaluable_result_path(
    submission: Mapping[str, Any], result_path: Path, out_dir: Path, nusc: NuScenes, max_range: float
) -> Path:
    """The submission file the devkit can read.

    The devkit raises on a submission with no box at all (its filter looks for a box to find
    the class field). Such a submission is evaluated as a copy holding one placeholder box
    beyond every class range: the devkit's own distance filter removes it before matching,
    so the metrics are exactly those of "no detections".
    """
    if any(submission["results"].values()):
        return result_path
    first_token = next(iter(submission["results"]))
    results = dict(submission["results"])
    results[first_token] = [_placeholder_detection(nusc, first_token, max_range + PLACEHOLDER_DISTANCE)]
    return save_submission({"meta": submission["meta"], "results": results}, out_dir / "results_no_detections.json")


def _load_checked_submission(
    result_path: Path, nusc: NuScenes, eval_set: str, max_boxes_per_sample: int
) -> dict[str, Any]:
    """Load a submission and check it against the split (see :func:`check_submission`)."""
    with open(result_path) as handle:
        submission = json.load(handle)
    split_tokens = split_sample_tokens(nusc, eval_set)
    if not split_tokens:
        raise ValueError(f"split {eval_set!r} of {nusc.version} under {nusc.dataroot} holds no sample")
    check_submission(submission, split_tokens, max_boxes_per_sample)
    return submission


def _finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None where the devkit leaves a metric undefined (NaN)."""
    return None if math.isnan(value) else float(value)


def collect_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Reshape the devkit's ``DetectionMetrics.serialize()`` output into HarmoDistill's metrics dict.

    Returns:
        ``NDS``, ``mAP``, ``mATE``, ``mASE``, ``mAOE``, ``mAVE``, ``mAAE`` (floats) and
        ``per_class``: class → ``AP`` (mean over distance thresholds), ``AP@<th>`` for each
        matching threshold in metres, and ``ATE``/``ASE``/``AOE``/``AVE``/``AAE`` (None where
        the devkit does not define the error, e.g. a traffic cone's orientation).
    """
    metrics: dict[str, Any] = {"NDS": float(summary["nd_score"]), "mAP": float(summary["mean_ap"])}
    for tp_key, short in TP_NAMES.items():
        metrics[f"m{short}"] = float(summary["tp_errors"][tp_key])
    per_class = {}
    for name, mean_ap in summary["mean_dist_aps"].items():
        entry: dict[str, float | None] = {"AP": float(mean_ap)}
        for threshold, ap in sorted(summary["label_aps"][name].items()):
            entry[f"AP@{float(threshold)}"] = float(ap)
        for tp_key, short in TP_NAMES.items():
            entry[short] = _finite_or_none(summary["label_tp_errors"][name][tp_key])
        per_class[name] = entry
    metrics["per_class"] = per_class
    return metrics


def _write_json(content: Any, path: Path) -> None:
    """Write ``content`` as indented JSON (NaN written as the devkit writes it)."""
    with open(path, "w") as handle:
        json.dump(content, handle, indent=2)


def evaluate_submission(
    result_path: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    version: str,
    *,
    out_dir: str | os.PathLike[str],
    eval_set: str | None = None,
    config_name: str = "detection_cvpr_2019",
    render_curves: bool = False,
    verbose: bool = False,
    nusc: NuScenes | None = None,
) -> dict[str, Any]:
    """Evaluate a submission JSON with the official ``DetectionEval``.

    Args:
        result_path: the submission (see :mod:`.submission`).
        data_root: the nuScenes root (holding ``version/``).
        version: ``v1.0-mini``, ``v1.0-trainval``, ...
        out_dir: where metrics (and plots) are written.
        eval_set: the split; by default derived from ``version`` (:func:`default_eval_set`).
        config_name: the devkit's detection config.
        render_curves: also write the devkit's PR / TP curve plots to ``out_dir/plots``.
        verbose: let the devkit print its progress.
        nusc: an already loaded ``NuScenes`` of ``version`` (skips loading the tables).

    Returns:
        The metrics of :func:`collect_metrics` plus ``eval_set``, ``version``,
        ``config_name``, ``result_path`` and ``eval_time`` (s); also saved as
        ``out_dir/metrics.json``.

    Raises:
        FileNotFoundError: ``result_path`` does not exist.
        ValueError: ``nusc`` is of another version, the split is empty, or the submission
            misses samples of the split.
    """
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    result_path, out_dir = Path(result_path), Path(out_dir)
    if not result_path.is_file():
        raise FileNotFoundError(f"submission {result_path} not found")
    eval_set = eval_set or default_eval_set(version)
    if nusc is None:
        nusc = load_nuscenes(data_root, version, verbose=verbose)
    elif nusc.version != version:
        raise ValueError(f"the NuScenes object passed holds version {nusc.version!r}, expected {version!r}")
    config = config_factory(config_name)
    submission = _load_checked_submission(result_path, nusc, eval_set, config.max_boxes_per_sample)
    out_dir.mkdir(parents=True, exist_ok=True)
    readable_path = _evaluable_result_path(
        submission, result_path, out_dir, nusc, max(config.class_range.values())
    )
    evaluator = DetectionEval(
        nusc, config=config, result_path=str(readable_path), eval_set=eval_set,
        output_dir=str(out_dir), verbose=verbose,
    )
    detection_metrics, metric_data = evaluator.evaluate()
    if render_curves:
        evaluator.render(detection_metrics, metric_data)
    summary = detection_metrics.serialize()
    _write_json({**summary, "meta": evaluator.meta}, out_dir / "metrics_summary.json")
    _write_json(metric_data.serialize(), out_dir / "metrics_details.json")
    metrics = collect_metrics(summary)
    metrics.update(
        eval_set=eval_set, version=version, config_name=config_name,
        result_path=str(result_path), eval_time=float(summary["eval_time"]),
    )
    _write_json(metrics, out_dir / "metrics.json")
    return metrics
