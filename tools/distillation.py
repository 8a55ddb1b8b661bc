"""Distil a teacher into a student: ``python tools/distillation.py CONFIG [--work-dir DIR] [--resume]``.

``CONFIG`` is a distiller config (``model=dict(type='HarmoDistiller', ...)``, see
``projects/configs/Distill3D``); data, optimizer and schedule are the student's. Training is
the engine's (``engine.runner.train``), exactly as ``tools/train.py``; under ``torchrun``
(``tools/dist_distill.sh``) every process runs this script and the trainer runs DDP (NCCL on
GPUs, gloo on CPU processes). Export the student afterwards with ``tools/distill_convert.py``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mmengine.config import DictAction

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.kd.distillers import HarmoDistiller
from projects.mmdet3d_plugin.registry import MODELS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="distiller config file (projects/configs/Distill3D/...)")
    parser.add_argument("--work-dir", help="where checkpoints and logs go (default work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const=True, default=False,
                        help="continue from WORK_DIR/latest.pth, or from the given checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="random seed (sampler, augmentation, init)")
    parser.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. model.teacher_ckpt=ckpts/teacher.pth")
    return parser.parse_args()


def check_distiller_config(cfg_model: dict, config: str) -> None:
    """Refuse a plain detector config (that is tools/train.py's job)."""
    model_type = cfg_model.get("type")
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if not (isinstance(cls, type) and issubclass(cls, HarmoDistiller)):
        raise SystemExit(f"{config}: model.type={model_type!r} is not a distiller; train a plain "
                         "detector with tools/train.py, or use a projects/configs/Distill3D config")


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    check_distiller_config(cfg.model, args.config)
    work_dir = Path(args.work_dir or Path("work_dirs") / Path(args.config).stem)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(work_dir / Path(args.config).name))
    train(cfg, work_dir, resume=args.resume, seed=args.seed, deterministic=args.deterministic)
    print(f"Checkpoints and logs: {work_dir}\nExport the student with: python tools/distill_convert.py "
          f"--src_path {work_dir / 'latest.pth'} --dst_path {work_dir / 'student.pth'} --config {args.config}")


if __name__ == "__main__":
    main()
