"""Evaluate a checkpoint with the official nuScenes evaluator: ``python tools/test.py CONFIG CKPT --eval bbox``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmengine.config import DictAction

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.datasets.evaluation.metrics_table import format_metrics_table
from projects.mmdet3d_plugin.engine.precision import PRECISIONS
from projects.mmdet3d_plugin.engine.runner import load_config, test


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="python config file")
    parser.add_argument("checkpoint", help="checkpoint file (engine .pth, converted student, or published)")
    parser.add_argument("--eval", nargs="+", default=["bbox"], choices=["bbox"],
                        help="metrics to compute (nuScenes detection: bbox)")
    parser.add_argument("--out", help="directory for the submission JSON and metrics (default next to CKPT)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="evaluation precision (default fp32, as upstream tests; bf16-mixed runs on CPUs)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    out_dir = Path(args.out) if args.out else Path(args.checkpoint).parent / "test"
    metrics = test(cfg, args.checkpoint, out_dir, precision=args.precision)
    if metrics:
        print(format_metrics_table(metrics))
        print(f"Metrics: {out_dir / 'metrics.json'}")
        print(json.dumps({"NDS": metrics.get("NDS"), "mAP": metrics.get("mAP")}))


if __name__ == "__main__":
    main()
