"""Training throughput of a detector or distiller config, with a per-step breakdown.

    python tools/benchmark_train.py CONFIG [--steps 10] [--warmup 2] [--batch-size B]
        [--workers W] [--device cpu|cuda] [--precision fp32|bf16|fp16] [--profile DIR]
        [--profile-steps 3] [--count-syncs N] [--teacher-ckpt PATH | --random-teacher]
        [--out result.json] [--cfg-options k=v ...]

Builds what a training run builds (``engine.runner``): the model (random weights: no
pretrained backbone is fetched; a distiller's teacher from ``model.teacher_ckpt``, or an
untrained one with ``--random-teacher``), the optimizer with its param-wise multipliers, the
lr schedule, the grad clip, and the training loader (the config's streaming sampler, seeded
augmentation, ``data.workers_per_gpu`` worker processes unless ``--workers``). Then runs
``--warmup`` untimed and ``--steps`` timed steps and reports samples/s and each part of a
step (``harmodistill_tools/train_timing.py`` defines them): mean / median / p90 and its share
of the mean step. Peak memory: CUDA ``max_memory_allocated``, or on CPU the growth of this
process's peak RSS (loader workers are other processes and are not counted).

Precision: the config's training precision, or ``--precision`` over the whole model
(autocast over the forward; ``fp16`` with a GradScaler, CUDA only). ``--profile DIR`` runs
``--profile-steps`` more steps under ``torch.profiler`` (after the timed ones) and writes a
chrome trace and the top operators. ``--count-syncs N`` (CUDA only) runs N more steps in
``torch.cuda.set_sync_debug_mode('warn')`` and reports the host synchronisations per step and
the source lines causing them (``harmodistill_tools/sync_count.py``). Numbers compare only
within one run (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from mmengine.config import DictAction
from tqdm import tqdm

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from harmodistill_tools.benchmarking import (PeakMemoryMeter, environment, latency_stats, resolve_device,
                                             synchronizer, write_result)
from harmodistill_tools.profiling import profile_steps
from harmodistill_tools.sync_count import count_syncs, format_syncs
from harmodistill_tools.train_timing import (FORWARD_PARTS, LOSS_PARTS, STEP_PARTS, TrainStepTimer,
                                             add_teacher_options, is_distiller_config, require_training_data,
                                             teacher_checkpoint)
from projects.mmdet3d_plugin.engine.optim import build_optimizer, build_scheduler
from projects.mmdet3d_plugin.engine.precision import PrecisionSpec, apply_feature_precision
from projects.mmdet3d_plugin.engine.runner import build_model, build_train_loader, load_config
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime

#: ``--precision`` -> the engine's training precision.
PRECISIONS = {"fp32": "fp32", "bf16": "bf16-mixed", "fp16": "16-mixed"}
_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="detector or distiller config")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (loader start-up included)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers; default data.workers_per_gpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's data.samples_per_gpu")
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default=None,
                        help="autocast over the whole forward (default: the config's training precision)")
    parser.add_argument("--profile", default=None, metavar="DIR", help="write a torch.profiler trace and tables here")
    parser.add_argument("--profile-steps", type=int, default=3, help="steps run under the profiler")
    parser.add_argument("--count-syncs", type=int, default=0, metavar="N",
                        help="CUDA only: count host syncs over N more steps (sync-debug warn mode)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model init, sampler and augmentation")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. data.train.ann_file=...")
    add_teacher_options(parser)
    args = parser.parse_args(argv)
    bad = [f"--{name.replace('_', '-')} {value}" for name, value, low in (
        ("steps", args.steps, 1), ("warmup", args.warmup, 0), ("batch_size", args.batch_size, 1),
        ("workers", args.workers, 0), ("profile_steps", args.profile_steps, 1),
        ("count_syncs", args.count_syncs, 0)) if value is not None and value < low]
    if bad:
        parser.error(f"need --steps >= 1, --warmup >= 0, --batch-size >= 1, --workers >= 0, "
                     f"--profile-steps >= 1, --count-syncs >= 0; got {', '.join(bad)}")
    return args


def training_precision(cfg: Any, choice: Optional[str], device: torch.device) -> PrecisionSpec:
    """The config's training precision, or ``--precision`` over the whole model, on ``device``."""
    if choice == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device (fp16 autocast with a GradScaler); "
                         "on the CPU use --precision bf16 or fp32")
    spec = parse_runtime(cfg).precision.override(train=PRECISIONS[choice] if choice else None)
    return spec.on_device("gpu" if device.type == "cuda" else "cpu")


def part_stats(times: dict[str, list[float]], names: Sequence[str], step_mean_ms: float) -> dict[str, dict[str, float]]:
    """``{part: {mean_ms, p50_ms, p90_ms, share}}``; ``share`` = mean part / mean step."""
    stats = {name: latency_stats(times[name]) for name in names}
    for values in stats.values():
        values["share"] = values["mean_ms"] / step_mean_ms
    return stats


def summarize(records: Sequence[tuple[dict[str, float], int]], distiller: bool) -> dict[str, Any]:
    """Samples/s and the statistics of every part over the timed steps."""
    times = {name: [parts[name] for parts, _ in records] for name in records[0][0]}
    samples = sum(count for _, count in records)
    step = latency_stats(times["step"])
    forward = [name for name in FORWARD_PARTS if distiller or name not in ("teacher_forward", "distill_losses")]
    result: dict[str, Any] = dict(
        samples=samples, samples_per_s=samples / sum(times["step"]), step=step,
        parts=part_stats(times, STEP_PARTS, step["mean_ms"]),
        forward_parts=part_stats(times, forward, step["mean_ms"]),
        loss_parts=part_stats(times, LOSS_PARTS, step["mean_ms"]),
    )
    if distiller:
        result["distillation_share"] = sum(result["forward_parts"][name]["share"]
                                           for name in ("teacher_forward", "distill_losses"))
    return result


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report of :func:`main`'s result."""
    env = result["environment"]
    lines = [
        f"config: {result['config']} ({result['model_type']}); {result['weights']}",
        f"data: {result['inputs']}; batch {result['batch_size']}, {result['workers']} loader workers; "
        f"precision {result['precision']}; {result['steps']} timed steps after {result['warmup']} warm-up",
        f"device: {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"{env['cpu_count']} CPUs, load average {env.get('load_average_1m', 'n/a')}",
        f"throughput: {result['samples_per_s']:.3f} samples/s ({result['samples']} samples in the timed steps)",
        f"{'part (indented: of forward, of loss)':<38}{'mean ms':>10}{'p50 ms':>10}{'p90 ms':>10}{'share':>8}",
    ]
    nested = {"forward": ("  ", "forward_parts"), "loss": ("    ", "loss_parts")}

    def add(group: str, indent: str) -> None:
        for name, stats in result[group].items():
            lines.append(f"{indent + name:<38}{stats['mean_ms']:>10.1f}{stats['p50_ms']:>10.1f}"
                         f"{stats['p90_ms']:>10.1f}{100 * stats['share']:>7.1f}%")
            if name in nested:
                add(nested[name][1], nested[name][0])

    add("parts", "")
    step = result["step"]
    lines.append(f"{'step':<38}{step['mean_ms']:>10.1f}{step['p50_ms']:>10.1f}{step['p90_ms']:>10.1f}{100:>7.1f}%")
    if "distillation_share" in result:
        lines.append(f"distillation (teacher forward + distillation losses, forward only): "
                     f"{100 * result['distillation_share']:.1f}% of the step; tools/benchmark_distill.py "
                     "measures the whole overhead against a student step")
    lines.append(f"peak memory: {result['peak_memory_mib']:.0f} MiB ({result['peak_memory_method']})")
    return "\n".join(lines)


def build_run(args: argparse.Namespace, cfg: Any, device: torch.device,
              precision: PrecisionSpec) -> tuple[TrainStepTimer, str]:
    """The step timer over the config's model, optimizer, schedule and ``precision``, and a
    description of the weights."""
    runtime = parse_runtime(cfg)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    weights = "random init (no pretrained backbone)"
    with tempfile.TemporaryDirectory(prefix="benchmark_train_") as tmp:
        if is_distiller_config(cfg):
            cfg.model.teacher_ckpt, note = teacher_checkpoint(cfg, args.teacher_ckpt, args.random_teacher, Path(tmp))
            weights = f"student {weights}; teacher {note}"
        model = build_model(cfg, init_weights=False).to(device).train()
    apply_feature_precision(model, precision)
    dtype = _DTYPES.get(precision.train)
    optimizer = build_optimizer(model, runtime.optimizer)
    timer = TrainStepTimer(
        model, optimizer, build_scheduler(optimizer, runtime.schedule),
        (runtime.grad_clip_max_norm, runtime.grad_clip_norm_type), device, synchronizer(device),
        autocast_dtype=dtype if precision.scope == "model" else None,
        scaler=torch.amp.GradScaler("cuda") if precision.train == "16-mixed" else None,
        max_iters=runtime.schedule.max_iters)
    return timer, weights


def run_steps(timer: TrainStepTimer, batches: Iterator[dict[str, Any]], args: argparse.Namespace,
              device: torch.device) -> tuple[list[tuple[dict[str, float], int]], PeakMemoryMeter, dict]:
    """Warm-up, timed steps (under the peak memory meter), the profiled steps of ``--profile``
    and the sync-counted steps of ``--count-syncs``.

    The loader iterator ``batches`` (and its workers) ends with this call.

    Returns:
        The timed records, the meter and the extras: ``profile`` and ``host_syncs`` when asked.
    """
    records = []
    meter = PeakMemoryMeter(device)
    with timer.timing():
        for _ in tqdm(range(args.warmup), desc="warm-up", unit="step"):
            timer.step(batches)
        with meter:
            for _ in tqdm(range(args.steps), desc="timed", unit="step"):
                records.append(timer.step(batches))
    extras: dict[str, Any] = {}
    if args.profile:
        extras["profile"] = profile_steps(lambda: timer.step(batches), args.profile_steps, Path(args.profile), device)
    if args.count_syncs:
        extras["host_syncs"] = count_syncs(lambda: timer.step(batches), args.count_syncs, device)
    return records, meter, extras


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--out``); returns the result dict."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    cfg.data.samples_per_gpu = args.batch_size or cfg.data.get("samples_per_gpu", 1)
    cfg.data.workers_per_gpu = cfg.data.get("workers_per_gpu", 0) if args.workers is None else args.workers
    device = resolve_device(args.device)
    precision = training_precision(cfg, args.precision, device)
    if args.count_syncs and device.type != "cuda":
        raise ValueError(f"--count-syncs needs a CUDA device (--device cuda), got {device}: "
                         "the CPU has no host synchronisations to count")
    require_training_data(cfg)
    timer, weights = build_run(args, cfg, device, precision)
    records, meter, extras = run_steps(timer, iter(build_train_loader(cfg, args.seed)), args, device)
    result: dict[str, Any] = dict(
        config=args.config, model_type=type(timer.model).__name__, weights=weights,
        inputs=f"data.train ({cfg.data.train.ann_file}) through the training loader",
        batch_size=int(cfg.data.samples_per_gpu), workers=int(cfg.data.workers_per_gpu),
        precision=f"{precision.train} (scope {precision.scope})",
        steps=args.steps, warmup=args.warmup, environment=environment(device),
        **summarize(records, timer.is_distiller), peak_memory_mib=meter.peak_mib, peak_memory_method=meter.method,
    )
    result.update(extras)
    print(format_table(result))
    if "host_syncs" in result:
        print(format_syncs(result["host_syncs"]))
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
