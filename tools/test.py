"""Evaluate a checkpoint with the official nuScenes evaluator: ``python tools/test.py CONFIG CKPT --eval bbox``."""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from mmengine.config import Config, DictAction

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.datasets.evaluation.metrics_table import format_metrics_table
from projects.mmdet3d_plugin.engine.precision import PRECISIONS
from projects.mmdet3d_plugin.engine.runner import load_config, test
from projects.mmdet3d_plugin.kd.student_conversion import is_distiller_checkpoint
from projects.mmdet3d_plugin.kd.distillers import HarmoDistiller
from projects.mmdet3d_plugin.registry import MODELS


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


def refuse_distiller_checkpoint(cfg: Config, config: str, checkpoint: str) -> None:
    """A distiller checkpoint (``student.*`` / ``teacher.*``) with a plain detector config:
    exit with the ``tools/distill_convert.py`` command that exports its student."""
    model_type = cfg.model.get("type")
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if isinstance(cls, type) and issubclass(cls, HarmoDistiller):
        return
    if not Path(checkpoint).is_file() or not is_distiller_checkpoint(checkpoint):
        return
    student = Path(checkpoint).with_name(f"{Path(checkpoint).stem}_student.pth")
    q = shlex.quote
    raise SystemExit(
        f"{checkpoint} is a distiller checkpoint (student.* / teacher.* keys) and {config} a plain "
        f"{model_type} config. Export its student first, then test that:\n"
        f"  python tools/distill_convert.py --src_path {q(checkpoint)} --dst_path {q(str(student))} "
        f"--config {q(config)}\n"
        f"  python tools/test.py {q(config)} {q(str(student))} --eval bbox")


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    refuse_distiller_checkpoint(cfg, args.config, args.checkpoint)
    out_dir = Path(args.out) if args.out else Path(args.checkpoint).parent / "test"
    metrics = test(cfg, args.checkpoint, out_dir, precision=args.precision)
    if metrics:
        print(format_metrics_table(metrics))
        print(f"Metrics: {out_dir / 'metrics.json'}")
        print(json.dumps({"NDS": metrics.get("NDS"), "mAP": metrics.get("mAP")}))


if __name__ == "__main__":
    main()
