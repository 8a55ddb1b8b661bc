"""Evaluate the ground truth of an info file as if it were a detector's output.

The val info file's boxes go through the project's submission writer and the official
nuScenes ``DetectionEval``; a correct chain scores mAP = NDS = 1. Example::

    python tools/evaluate_gt.py --data-root data/synthetic --version v1.0-mini \\
        --ann-file data/synthetic/nuscenes2d_temporal_infos_val.pkl --out-dir work_dirs/gt_eval
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.evaluation.gt_predictions import gt_to_predictions
from projects.mmdet3d_plugin.datasets.evaluation.metrics_table import format_metrics_table
from projects.mmdet3d_plugin.datasets.evaluation.nusc_eval import evaluate_submission
from projects.mmdet3d_plugin.datasets.evaluation.submission import results_to_submission, save_submission
from projects.mmdet3d_plugin.datasets.nuscenes_dataset import read_info_file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="nuScenes root (holds the version's tables)")
    parser.add_argument("--version", default="v1.0-mini", help="nuScenes version, e.g. v1.0-mini or v1.0-trainval")
    parser.add_argument("--ann-file", required=True, help="temporal info .pkl of the evaluated split")
    parser.add_argument("--out-dir", required=True, help="folder for the submission, metrics and plots")
    parser.add_argument("--eval-set", default=None, help="split to evaluate (default: derived from --version)")
    parser.add_argument("--render", action="store_true", help="write the devkit's PR / TP curves to OUT_DIR/plots")
    parser.add_argument("--verbose", action="store_true", help="let the devkit print its progress")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Write the ground truth as a submission, evaluate it and print the metrics table."""
    args = parse_args(argv)
    out_dir = Path(args.out_dir)
    infos, _ = read_info_file(args.ann_file)
    predictions, tokens = gt_to_predictions(infos, NUSCENES_CLASSES)
    submission = results_to_submission(predictions, tokens, infos, NUSCENES_CLASSES)
    result_path = save_submission(submission, out_dir / "results_nusc.json")
    metrics = evaluate_submission(
        result_path, args.data_root, args.version, out_dir=out_dir, eval_set=args.eval_set,
        render_curves=args.render, verbose=args.verbose,
    )
    print(format_metrics_table(metrics))
    print(f"\nsubmission: {result_path}\nmetrics: {out_dir / 'metrics.json'}")
    if args.render:
        print(f"plots: {out_dir / 'plots'}")
    return metrics


if __name__ == "__main__":
    main()
