"""Distil a teacher into a student: ``python tools/distillation.py CONFIG [--work-dir DIR] [--resume]``.

``CONFIG`` is a distiller config (``model=dict(type='HarmoDistiller', ...)``, see
``projects/configs/Distill3D``); data, optimizer and schedule are the student's. Training is
the engine's (``engine.runner.train``), exactly as ``tools/train.py``; under ``torchrun``
(``tools/dist_distill.sh``) every process runs this script and the trainer runs DDP (NCCL on
GPUs, gloo on CPU processes). Export the student afterwards with ``tools/distill_convert.py``.
"""
from __future__ import annotations

from mmengine.config import Config

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.engine.train_cli import train_arg_parser, train_from_args
from projects.mmdet3d_plugin.kd.distillers import HarmoDistiller
from projects.mmdet3d_plugin.registry import MODELS


def check_distiller_config(cfg: Config, config: str) -> None:
    """Refuse a plain detector config (that is tools/train.py's job)."""
    model_type = cfg.model.get("type")
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if not (isinstance(cls, type) and issubclass(cls, HarmoDistiller)):
        raise SystemExit(f"{config}: model.type={model_type!r} is not a distiller; train a plain "
                         "detector with tools/train.py, or use a projects/configs/Distill3D config")


def main() -> None:
    parser = train_arg_parser(__doc__.splitlines()[0], "distiller config file (projects/configs/Distill3D/...)",
                              "model.teacher_ckpt=ckpts/teacher.pth")
    args = parser.parse_args()
    work_dir = train_from_args(args, check_config=check_distiller_config)
    print(f"Checkpoints and logs: {work_dir}\nExport the student with: python tools/distill_convert.py "
          f"--src_path {work_dir / 'latest.pth'} --dst_path {work_dir / 'student.pth'} --config {args.config}")


if __name__ == "__main__":
    main()
