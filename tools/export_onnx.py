"""Export a streaming student (RepDetr3D / Petr3D) to ONNX with explicit memory I/O.

    python tools/export_onnx.py CONFIG CKPT --out DIR [--opset 17] [--frames 3]

Writes ``DIR/<config name>.onnx`` and ``DIR/export_report.json`` (inputs, outputs, dynamic
axes, the per-frame max |PyTorch - onnxruntime| over a short synthetic stream that feeds the
memory outputs back as inputs, and the onnxruntime latency). The image size is the config's
``ida_aug_conf['final_dim']`` padded to a multiple of 32, unless ``--image-size`` is given.
See docs/export.md for the graph's inputs and outputs.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from projects.mmdet3d_plugin.core.checkpoint import load_checkpoint, numpy_safe_globals
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.export.example_frames import synthetic_frame
from projects.mmdet3d_plugin.export.onnx_export import (MIN_OPSET, check_parity, export_streaming_onnx,
                                                        onnx_input_names)
from projects.mmdet3d_plugin.export.ort_runner import time_onnx_model
from projects.mmdet3d_plugin.export.streaming_wrapper import OUTPUT_NAMES, frame_inputs
from projects.mmdet3d_plugin.models.detectors.base import build_detector

_PAD_DIVISOR = 32
_NUM_CAMS = 6


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument("--frames", type=int, default=3, help="frames of the parity check (0: skip)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="padded input image size (default: from the config)")
    parser.add_argument("--time-iters", type=int, default=5, help="timed onnxruntime runs (0: skip)")
    return parser.parse_args(argv)


def config_image_size(cfg: Any) -> tuple[int, int]:
    """``final_dim`` of the config's ``ida_aug_conf``, padded to a multiple of 32."""
    if "ida_aug_conf" not in cfg or "final_dim" not in cfg.ida_aug_conf:
        raise KeyError("the config has no ida_aug_conf['final_dim']; pass --image-size H W")
    height, width = cfg.ida_aug_conf["final_dim"]
    return tuple(int(math.ceil(v / _PAD_DIVISOR) * _PAD_DIVISOR) for v in (height, width))


def build_student(cfg: Any, checkpoint: str) -> Any:
    """The detector of ``cfg`` with ``checkpoint`` loaded strictly, in eval mode."""
    if cfg.model.get("type") == "HarmoDistiller":
        raise ValueError("export needs a plain detector config, got type='HarmoDistiller'; convert the "
                         "distiller (tools/distill_convert.py) and pass the student's config")
    model = build_detector(cfg.model, "the export config")
    load_checkpoint(model, checkpoint, strict=True, allowed_globals=numpy_safe_globals())
    return model.eval()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    model = build_student(cfg, args.checkpoint)
    size = tuple(args.image_size) if args.image_size else config_image_size(cfg)
    frames = [synthetic_frame(i, 1, _NUM_CAMS, size) for i in range(max(args.frames, 1))]
    out_dir = Path(args.out)
    path = export_streaming_onnx(model, frames[0], out_dir / f"{Path(args.config).stem}.onnx", args.opset)
    report: dict[str, Any] = dict(onnx=str(path), opset=args.opset, image_size=list(size), num_cams=_NUM_CAMS,
                                  inputs=onnx_input_names(path), outputs=list(OUTPUT_NAMES),
                                  dynamic_axes="dimension 0 (batch) of every input and output")
    if args.frames > 0:
        report["max_abs_diff"] = check_parity(model, path, frames)
    if args.time_iters > 0:
        frame = {k: v.numpy() for k, v in frame_inputs(frames[-1]).items()}
        report["onnxruntime_cpu"] = time_onnx_model(path, frame, warmup=1, iters=args.time_iters)
    (out_dir / "export_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
