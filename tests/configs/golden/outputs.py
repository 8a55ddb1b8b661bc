"""Reference outputs of every shipped config on fixed weights and inputs (refactor guard).

For each config under ``projects/configs``, the model is built as the config says (a
distiller without reading its teacher file), every parameter and BatchNorm statistic is
replaced by values that depend only on the tensor's **name and shape** (so a refactor that
builds modules in another order gets the same weights), and the model runs two streaming
frames of :func:`synthetic_frame` (6 cameras, 64 x 192) in ``predict`` mode and, from a fresh
memory with fixed seeds, two frames in ``loss`` mode (a distiller: detection and
distillation losses). One intra-op thread, so float sums have one order.

``python -m tests.configs.golden.outputs --write`` stores the outputs in ``outputs.pt`` next
to this file; ``tests/configs/test_golden_outputs.py`` requires them equal up to float-order noise
(its docstring says how much).
``--add`` computes only the configs the stored file lacks (a new config) and keeps every
stored entry as it is.
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from mmengine.config import Config

from projects.mmdet3d_plugin.export.example_frames import synthetic_frame
from projects.mmdet3d_plugin.registry import MODELS
from projects.mmdet3d_plugin.paths import REPO_ROOT

ROOT = REPO_ROOT
STORE = Path(__file__).with_name("outputs.pt")
CONFIGS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "projects" / "configs").rglob("*.py")
                 if "_base_" not in path.parts)
IMAGE_SIZE = (64, 192)
NUM_CAMS = 6
_BN_STATS = ("running_mean", "running_var")


def named_value(name: str, like: torch.Tensor) -> torch.Tensor:
    """A tensor shaped like ``like`` whose values depend only on ``name`` and the shape:
    BatchNorm variances in [0.5, 1.5], norm scales near 1, biases near 0, weights with
    standard deviation ``1 / sqrt(fan_in)``."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    noise = torch.randn(like.shape, generator=gen, dtype=torch.float64)
    if name.endswith("running_var"):
        value = 0.5 + torch.rand(like.shape, generator=gen, dtype=torch.float64)
    elif name.endswith("running_mean") or name.endswith("bias"):
        value = 0.05 * noise
    elif like.dim() == 1:
        value = 1.0 + 0.1 * noise
    else:
        value = noise / max(like[0].numel(), 1) ** 0.5
    return value.to(like.dtype)


def fix_weights(model: torch.nn.Module) -> None:
    """Every parameter and BatchNorm statistic of ``model`` set by :func:`named_value` (a
    tensor shared under several names, like the tied branches, by its smallest name); the
    other buffers (constants) keep their built values."""
    state = model.state_dict(keep_vars=True)
    params = {id(value) for value in model.parameters()}
    aliases: dict[int, str] = {}
    for name, value in state.items():
        aliases[id(value)] = min(name, aliases.get(id(value), name))
    fixed = {name: named_value(aliases[id(value)], value.detach())
             if id(value) in params or name.endswith(_BN_STATS) else value.detach()
             for name, value in state.items()}
    model.load_state_dict(fixed, strict=True)


def _depth_maps() -> torch.Tensor:
    """``(1, N, H / 16, W / 16)`` LiDAR depths of a frame: a ramp (40 m at the top row to
    5 m at the bottom), every third cell empty."""
    rows, cols = IMAGE_SIZE[0] // 16, IMAGE_SIZE[1] // 16
    ramp = torch.linspace(40.0, 5.0, rows)[:, None] + 0.5 * torch.arange(cols)[None]
    depth = ramp * (torch.arange(rows * cols).reshape(rows, cols) % 3 != 0)
    return depth.expand(1, NUM_CAMS, rows, cols).clone()


def _frame(index: int) -> dict[str, Any]:
    """Frame ``index`` of the fixed stream with two GT boxes in front of camera 0 (and LiDAR
    depth maps, read by the configs with LiDAR depth supervision only)."""
    frame = synthetic_frame(index, 1, NUM_CAMS, IMAGE_SIZE, seed=7)
    boxes = torch.tensor([[15.0, 1.0, 0.0, 4.0, 2.0, 1.5, 0.2, 1.0, 0.0],
                          [22.0, -3.0, 0.5, 0.8, 0.7, 1.7, 1.0, 0.0, 0.5]])
    height, width = IMAGE_SIZE
    frame.update(
        img_shape=[IMAGE_SIZE], pad_shape=[IMAGE_SIZE],
        gt_bboxes_3d=[boxes], gt_labels_3d=[torch.tensor([0, 8])],
        gt_bboxes=[[torch.tensor([[0.3 * width, 0.3 * height, 0.6 * width, 0.7 * height]])
                    for _ in range(NUM_CAMS)]],
        gt_labels=[[torch.tensor([0]) for _ in range(NUM_CAMS)]],
        centers2d=[[torch.tensor([[0.45 * width, 0.5 * height]]) for _ in range(NUM_CAMS)]],
        depths=[[torch.tensor([15.0]) for _ in range(NUM_CAMS)]],
        depth_maps=_depth_maps(),
    )
    return frame


def build(config: str) -> torch.nn.Module:
    """The model of ``config`` (relative to the repository root) with :func:`fix_weights`."""
    cfg = Config.fromfile(str(ROOT / config)).model.to_dict()
    if cfg["type"] == "HarmoDistiller":
        cfg["load_teacher"] = False
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    fix_weights(model)
    return model


def _seed(value: int) -> None:
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """``(key, tensor)`` pairs of a nest of dicts / lists of tensors."""
    if isinstance(value, torch.Tensor):
        yield prefix, value.detach().clone()
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _flat(f"{prefix}/{key}", value[key])
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _flat(f"{prefix}/{i}", item)
    else:
        raise TypeError(f"{prefix}: unexpected output type {type(value).__name__}")


def config_outputs(config: str) -> dict[str, torch.Tensor]:
    """Predictions of two frames and losses of two frames of ``config`` (see module doc)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build(config)
        out: dict[str, torch.Tensor] = {}
        model.eval()
        model.reset_memory()
        with torch.no_grad():
            for index in range(2):
                out.update(_flat(f"predict/{index}", model(_frame(index), mode="predict")))
        model.train()
        model.reset_memory()
        _seed(0)
        with torch.no_grad():
            for index in range(2):
                out.update(_flat(f"loss/{index}", model(_frame(index), mode="loss")))
        return out
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"store the outputs in {STORE}")
    mode.add_argument("--add", action="store_true",
                      help=f"compute and store only the configs {STORE.name} lacks, keeping the others")
    args = parser.parse_args()
    os.chdir(ROOT)
    outputs = torch.load(STORE, weights_only=True) if args.add else {}
    for config in CONFIGS:
        if config in outputs:
            continue
        outputs[config] = config_outputs(config)
        print(f"{config}: {len(outputs[config])} tensors")
    if args.write or args.add:
        torch.save({config: outputs[config] for config in CONFIGS}, STORE)
        print(f"wrote {STORE}")


if __name__ == "__main__":
    main()
