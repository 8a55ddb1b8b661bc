"""Export the student of a distiller checkpoint as a plain detector checkpoint.

``python tools/distill_convert.py --src_path work_dirs/distill_raydn_r50_r18/latest.pth
--dst_path work_dirs/distill_raydn_r50_r18/student.pth [--config CONFIG]``

Keeps ``student.*`` (without the prefix), drops the teacher, adapters, loss modules and the
training state, and writes ``{'state_dict': ..., 'meta': ...}`` atomically. With
``--config`` (the student's config, or the distiller config) it first proves that the
student detector loads the result with ``strict=True``.
"""
from __future__ import annotations

import argparse
import sys

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.kd.student_conversion import convert_distiller_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src_path", required=True, help="distiller checkpoint (e.g. work_dirs/.../latest.pth)")
    parser.add_argument("--dst_path", required=True, help="where the student checkpoint is written")
    parser.add_argument("--config", help="student or distiller config: check a strict load before writing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config) if args.config else None
        report = convert_distiller_checkpoint(args.src_path, args.dst_path, cfg=cfg, cfg_name=args.config)
    except (CheckpointError, FileNotFoundError, KeyError) as err:
        print(f"distill_convert: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
