"""Inference latency of detectors: building one to time, its input frames, and timing several
models interleaved in one process.

Shared by ``tools/benchmark.py`` (one model, by stage) and ``tools/benchmark_compare.py``
(several models, round-robin). Timing models one after the other, or in separate
processes, lets the machine's load drift between them; interleaving them frame by frame
gives every model the same conditions, so their latencies compare.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import nn
from tqdm import tqdm

from harmodistill_tools.benchmarking import config_image_size, dataset_available, streaming_indices
from projects.mmdet3d_plugin.core.checkpoint import load_checkpoint, numpy_safe_globals
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.engine.runner import build_dataset
from projects.mmdet3d_plugin.export.example_frames import synthetic_frame
from projects.mmdet3d_plugin.models.detectors.base import build_detector as build_streaming_detector

NUM_CAMS = 6


def build_detector(cfg: Any, checkpoint: Optional[str], device: torch.device) -> nn.Module:
    """The config's detector in eval mode on ``device``; ``checkpoint`` loaded strictly if given.

    Without a checkpoint the weights are random (no pretrained backbone is fetched): the
    timing does not depend on them.
    """
    if cfg.model.get("type") == "HarmoDistiller":
        raise ValueError("a latency benchmark times a plain detector, got model.type='HarmoDistiller'; for a "
                         "distiller use tools/benchmark_distill.py, or pass its student's config")
    model = build_streaming_detector(cfg.model, "the benchmark's config")
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
        load_checkpoint(model, checkpoint, strict=True, allowed_globals=numpy_safe_globals())
    return model.to(device).eval()


def input_batches(cfg: Any, batch_size: int, count: int) -> tuple[list[dict[str, Any]], str]:
    """``count`` streaming batches and a description of where they come from.

    Real samples of ``data.test`` when its info file exists; otherwise synthetic frames
    (:func:`synthetic_frame`) of the config's resolution.
    """
    missing = dataset_available(cfg.data.get("test", {})) if "test" in cfg.data else "the config has no data.test"
    if missing is None:
        dataset = build_dataset(cfg, "test")
        batches = [collate_samples([dataset[i] for i in indices])
                   for indices in streaming_indices(len(dataset), batch_size, count)]
        return batches, f"real samples of data.test ({cfg.data.test.ann_file}, {len(dataset)} samples)"
    size = config_image_size(cfg)
    batches = [synthetic_frame(i, batch_size, NUM_CAMS, size) for i in range(count)]
    return batches, f"synthetic frames ({missing})"


def round_robin_order(names: Sequence[str], frame: int) -> list[str]:
    """The order the models run in at ``frame``: ``names`` rotated by ``frame`` places, so
    each model runs first, second, ... equally often (no model always follows the same one)."""
    if not names:
        raise ValueError("round_robin_order needs at least one model")
    shift = frame % len(names)
    return list(names[shift:]) + list(names[:shift])


def interleaved_latency(runs: Mapping[str, Callable[[int], Any]], frames: int, warmup: int,
                        sync: Callable[[], None], progress: bool = False) -> dict[str, list[float]]:
    """Seconds of each ``runs[name](frame)``, the models taking turns frame by frame.

    Frame ``i`` (``0 <= i < warmup + frames``) is run by every model, in
    :func:`round_robin_order`, before frame ``i + 1``; the first ``warmup`` frames are not
    timed. Each model thus streams its own frames in order and gets exactly ``frames`` timed
    runs. ``progress`` shows a progress bar over the frames.
    """
    if frames < 1 or warmup < 0:
        raise ValueError(f"need frames >= 1 and warmup >= 0, got {frames} and {warmup}")
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for frame in tqdm(range(warmup + frames), desc="frames (all models)", unit="frame", disable=not progress):
        for name in round_robin_order(list(runs), frame):
            sync()
            start = time.perf_counter()
            runs[name](frame)
            sync()
            if frame >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return seconds
