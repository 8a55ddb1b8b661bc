"""Cost of distillation: one distiller training step against teacher inference + a student step.

    python tools/benchmark_distill.py DISTILL_CONFIG [--iters 5] [--warmup 1] [--batch-size B]
        [--device cpu|cuda] [--teacher-ckpt PATH | --random-teacher] [--out result.json]
        [--cfg-options k=v ...]

Two steps run on the same training batches, interleaved (their order alternates per batch),
in one process:

* ``distill``: ``HarmoDistiller.forward(batch, mode='loss')`` (teacher predict under no_grad,
  student losses, taps, adapters, distillation losses) + backward + grad clip + optimizer step;
* ``baseline``: the same teacher's ``predict`` under ``no_grad`` (on the same teacher view of
  the batch) + the same student's own loss step (backward, grad clip, optimizer step).

The baseline runs on separate copies of the teacher and student (same weights, no taps) so
that each model streams every frame once, in order. The ratio ``distill / baseline`` is the
overhead of the distillation machinery itself. Reported per step: forward, backward and
optimizer time (mean; total also p50/p90) and peak memory (see
``harmodistill_tools/benchmarking.py`` for what the memory figure counts).

The teacher checkpoint is the config's ``model.teacher_ckpt``, or ``--teacher-ckpt``; when it
does not exist, ``--random-teacher`` writes a temporary checkpoint of a freshly built teacher
(untrained; the timing does not depend on the weights). The student starts from random
weights (no pretrained backbone is fetched).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from mmengine.config import DictAction
from torch import Tensor, nn

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from harmodistill_tools.benchmarking import (PeakMemoryMeter, environment, latency_stats,
                                             memory_method, move_to_device, resolve_device, streaming_indices,
                                             synchronizer, write_result)
from harmodistill_tools.train_timing import (add_teacher_options, clip_and_step, is_distiller_config, loss_total,
                                             require_training_data, teacher_checkpoint)
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.engine.optim import build_optimizer
from projects.mmdet3d_plugin.engine.runner import build_dataset, load_config
from projects.mmdet3d_plugin.engine.runtime_config import RuntimeSpec, parse_runtime
from projects.mmdet3d_plugin.kd.distillers import HarmoDistiller
from projects.mmdet3d_plugin.kd.distillers.detector_configs import load_detector_config
from projects.mmdet3d_plugin.kd.distillers.teacher_inputs import teacher_batch
from projects.mmdet3d_plugin.registry import MODELS

VARIANTS = ("distill", "baseline")
PARTS = ("forward", "backward", "optimizer", "total")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="distiller config (model.type='HarmoDistiller')")
    parser.add_argument("--iters", type=int, default=5, help="timed steps of each variant after the warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps of each variant first")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's data.samples_per_gpu")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    add_teacher_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the model init and the augmentation draws")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. data.train.ann_file=...")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or (args.batch_size is not None and args.batch_size < 1):
        parser.error(f"need --iters >= 1, --warmup >= 0, --batch-size >= 1; got {args.iters}, "
                     f"{args.warmup}, {args.batch_size}")
    return args


def check_distiller_config(cfg: Any, config: str) -> None:
    """Refuse a config whose model is not a :class:`HarmoDistiller`."""
    if not is_distiller_config(cfg):
        raise ValueError(f"{config}: model.type={cfg.model.get('type')!r} is not a distiller; time a plain detector "
                         "with tools/benchmark.py")


def build_baseline(distiller: HarmoDistiller, cfg: Any, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Tap-free copies of the distiller's teacher (eval, frozen) and student (train), same weights."""
    teacher = MODELS.build(load_detector_config(cfg.model.teacher_cfg, "teacher").model)
    teacher.load_state_dict(distiller.teacher.state_dict(), strict=True)
    student = MODELS.build(load_detector_config(cfg.model.student_cfg, "student",
                                                cfg.model.get("student_cfg_options")).model)
    student.load_state_dict(distiller.student.state_dict(), strict=True)
    teacher.requires_grad_(False)
    return teacher.to(device).eval(), student.to(device).train()


def training_batches(cfg: Any, batch_size: int, count: int, device: torch.device) -> list[dict[str, Any]]:
    """``count`` streaming batches of ``data.train`` (with ground truth and augmentation)."""
    require_training_data(cfg)
    dataset = build_dataset(cfg, "train")
    return [move_to_device(collate_samples([dataset[i] for i in indices]), device)
            for indices in streaming_indices(len(dataset), batch_size, count)]


def timed_step(forward: Callable[[], dict[str, Tensor]], optimizer: torch.optim.Optimizer,
               runtime: RuntimeSpec, sync: Callable[[], None]) -> tuple[dict[str, float], list[str]]:
    """One training step split into ``forward``, ``backward``, ``optimizer`` seconds (+ ``total``),
    and the names of the summed loss terms.

    The optimizer part clips the gradients as the engine does (``grad_clip``) and steps.
    """
    marks = [time.perf_counter()]
    losses = forward()
    total = loss_total(losses)
    sync()
    marks.append(time.perf_counter())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    sync()
    marks.append(time.perf_counter())
    clip_and_step(optimizer, runtime.grad_clip_max_norm, runtime.grad_clip_norm_type)
    sync()
    marks.append(time.perf_counter())
    parts = {name: end - start for name, start, end in zip(PARTS, marks, marks[1:])}
    parts["total"] = marks[-1] - marks[0]
    return parts, sorted(name for name in losses if "loss" in name)


def run_interleaved(steps: dict[str, Callable[[dict[str, Any]], tuple[dict[str, float], list[str]]]],
                    batches: Sequence[dict[str, Any]], warmup: int, device: torch.device
                    ) -> dict[str, dict[str, Any]]:
    """Each variant's step on every batch, alternating which goes first; stats after ``warmup``.

    Returns:
        variant -> ``{part: {mean_ms, p50_ms, p90_ms}}``, ``peak_memory_mib`` (the largest
        per-step peak over the timed steps) and ``loss_terms`` (the summed loss names).
    """
    times: dict[str, dict[str, list[float]]] = {v: {p: [] for p in PARTS} for v in steps}
    peaks: dict[str, list[float]] = {v: [] for v in steps}
    terms: dict[str, list[str]] = {}
    names = list(steps)
    for index, batch in enumerate(batches):
        for name in (names if index % 2 == 0 else names[::-1]):
            meter = PeakMemoryMeter(device)
            with meter:
                parts, terms[name] = steps[name](batch)
            if index >= warmup:
                peaks[name].append(meter.peak_mib)
                for part, seconds in parts.items():
                    times[name][part].append(seconds)
    return {name: dict({part: latency_stats(times[name][part]) for part in PARTS},
                       peak_memory_mib=max(peaks[name]), loss_terms=terms[name]) for name in names}


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report of :func:`main`'s result."""
    env = result["environment"]
    lines = [
        f"config: {result['config']}",
        f"teacher: {result['teacher']}; student: random init",
        f"inputs: {result['inputs']}; batch {result['batch_size']}, img {result['img_shape']}; "
        f"{result['iters']} timed steps of each variant after {result['warmup']} warm-up, interleaved",
        f"device: {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"{env['cpu_count']} CPUs, load average {env.get('load_average_1m', 'n/a')}",
        f"{'step':<10}{'fwd ms':>10}{'bwd ms':>10}{'opt ms':>9}{'total ms':>10}{'p50 ms':>10}{'p90 ms':>10}"
        f"{'peak MiB':>10}",
    ]
    for name in VARIANTS:
        stats = result[name]
        lines.append(f"{name:<10}{stats['forward']['mean_ms']:>10.0f}{stats['backward']['mean_ms']:>10.0f}"
                     f"{stats['optimizer']['mean_ms']:>9.0f}{stats['total']['mean_ms']:>10.0f}"
                     f"{stats['total']['p50_ms']:>10.0f}{stats['total']['p90_ms']:>10.0f}"
                     f"{stats['peak_memory_mib']:>10.0f}")
    for name in VARIANTS:
        lines.append(f"{name} loss terms ({len(result[name]['loss_terms'])}): {', '.join(result[name]['loss_terms'])}")
    lines.append(f"overhead distill / baseline: time x{result['time_ratio']:.2f} (mean total), "
                 f"peak memory x{result['memory_ratio']:.2f}")
    lines.append(f"peak memory: {result['peak_memory_method']}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--out``); returns the result dict."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    cfg = load_config(args.config, args.cfg_options)
    check_distiller_config(cfg, args.config)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    batch_size = args.batch_size or int(cfg.data.get("samples_per_gpu", 1))
    batches = training_batches(cfg, batch_size, args.warmup + args.iters, device)
    with tempfile.TemporaryDirectory(prefix="benchmark_distill_") as tmp:
        ckpt, teacher_note = teacher_checkpoint(cfg, args.teacher_ckpt, args.random_teacher, Path(tmp))
        cfg.model.teacher_ckpt = ckpt
        distiller = MODELS.build(cfg.model).to(device).train()
    teacher, student = build_baseline(distiller, cfg, device)
    runtime = parse_runtime(cfg)
    sync = synchronizer(device)
    opt_distill = build_optimizer(distiller, runtime.optimizer)
    opt_student = build_optimizer(student, runtime.optimizer)
    size = distiller.teacher_input_size

    def baseline_forward(batch: dict[str, Any]) -> dict[str, Tensor]:
        with torch.no_grad():
            teacher(teacher_batch(batch, size), mode="predict")
        return student(batch, mode="loss")

    steps = {
        "distill": lambda batch: timed_step(lambda: distiller(batch, mode="loss"), opt_distill, runtime, sync),
        "baseline": lambda batch: timed_step(lambda: baseline_forward(batch), opt_student, runtime, sync),
    }
    stats = run_interleaved(steps, batches, args.warmup, device)
    result: dict[str, Any] = dict(
        config=args.config, teacher=teacher_note, inputs=f"real training samples of data.train "
        f"({cfg.data.train.ann_file})", batch_size=batch_size, img_shape=list(batches[0]["img"].shape),
        iters=args.iters, warmup=args.warmup, environment=environment(device), **stats,
        time_ratio=stats["distill"]["total"]["mean_ms"] / stats["baseline"]["total"]["mean_ms"],
        memory_ratio=stats["distill"]["peak_memory_mib"] / max(stats["baseline"]["peak_memory_mib"], 1e-9),
        peak_memory_method=memory_method(device),
    )
    print(format_table(result))
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
