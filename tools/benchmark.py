"""Inference latency, FPS, parameters, GFLOPs and peak memory of a streaming detector, by stage.

    python tools/benchmark.py CONFIG [CKPT] [--iters 20] [--warmup 5] [--batch-size 1]
        [--device cpu|cuda] [--precision fp32|tf32|bf16|fp16] [--compile]
        [--compile-mode default|reduce-overhead|max-autotune] [--compile-backend inductor]
        [--cuda-graphs [--cuda-graph-head]] [--parity] [--parity-top-k 50] [--onnx MODEL.onnx] [--out result.json]
        [--cfg-options k=v ...]

The model (RepDetr3D / Petr3D; weights from CKPT, strictly, or random when no CKPT is given)
runs ``forward(batch, mode='predict')`` in eval mode under ``no_grad`` on batches streamed in
order, so the temporal memory is active as in testing. Inputs are real samples of the
config's ``data.test`` when its info file exists, otherwise synthetic frames of the config's
resolution (``ida_aug_conf['final_dim']`` padded to 32, six cameras); the output says which.
Stages: ``backbone`` (img_backbone), ``neck`` (img_neck), ``head`` (the rest of predict).
Only ratios measured in one run compare; see docs/benchmarks.md for recorded numbers and
what the FLOP and memory figures count.

``--precision``, ``--compile``, ``--cuda-graphs`` and ``--cuda-graph-head`` set how predict runs
(``harmodistill_tools/acceleration.py``; FLOPs and parameters are counted on the fp32 eager
model). ``--parity`` first streams the same frames through an fp32 eager copy of the same
weights and through the accelerated model, and reports how far box centres, sizes, scores
and top-k labels drift (``harmodistill_tools/parity.py``).
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from mmengine.config import DictAction
from torch import nn

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from harmodistill_tools.acceleration import (accelerate, add_acceleration_options, check_acceleration,
                                             predictor)
from harmodistill_tools.benchmarking import (DETECTOR_STAGES, REST_STAGE, PeakMemoryMeter, StageTimer,
                                             count_gflops, count_parameters, environment, latency_stats,
                                             move_to_device, resolve_device, synchronizer, write_result)
from harmodistill_tools.latency import build_detector, input_batches
from harmodistill_tools.parity import format_parity, parity_report, record_head_outputs
from projects.mmdet3d_plugin.engine.runner import load_config

STAGES = tuple(DETECTOR_STAGES) + (REST_STAGE,)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="detector config (RepDetr3D / Petr3D)")
    parser.add_argument("checkpoint", nargs="?", default=None, help="weights, loaded strictly (default: random)")
    parser.add_argument("--iters", type=int, default=20, help="timed frames after the warm-up")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames first")
    parser.add_argument("--batch-size", type=int, default=1, help="batch slots, each streaming its own frames")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    add_acceleration_options(parser)
    parser.add_argument("--parity", action="store_true",
                        help="report the drift of the accelerated model from fp32 eager on the same frames")
    parser.add_argument("--parity-top-k", type=int, default=50, help="queries per sample the parity compares")
    parser.add_argument("--onnx", default=None, help="exported model (tools/export_onnx.py) to time in onnxruntime")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. data.test.ann_file=...")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error(f"need --iters >= 1, --warmup >= 0, --batch-size >= 1; got {args.iters}, "
                     f"{args.warmup}, {args.batch_size}")
    return args


def time_predict(model: nn.Module, run: Callable[[dict[str, Any]], Any], batches: Sequence[dict[str, Any]],
                 warmup: int, device: torch.device) -> tuple[dict[str, dict[str, float]], PeakMemoryMeter]:
    """Per-stage latency statistics of ``run(batch)`` (a predict call of ``model``) over the
    batches after ``warmup``, and the peak memory.

    Returns:
        ``{stage: {mean_ms, p50_ms, p90_ms}}`` (stages and ``total``), and the meter of the
        timed frames (``peak_mib``, ``method``).
    """
    sync = synchronizer(device)
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES + ("total",)}
    meter = PeakMemoryMeter(device)
    with StageTimer(model, sync) as timer:
        for batch in batches[:warmup]:
            run(batch)
        timer.pop()
        with meter:
            for batch in batches[warmup:]:
                sync()
                start = time.perf_counter()
                run(batch)
                sync()
                total = time.perf_counter() - start
                stages = timer.pop()
                stages[REST_STAGE] = total - sum(stages.values())
                stages["total"] = total
                for name, seconds in stages.items():
                    per_stage[name].append(seconds)
    return {name: latency_stats(values) for name, values in per_stage.items()}, meter


def onnx_image_shape(path: str) -> list[Any]:
    """Dimensions of the ``img`` input of an exported graph (symbolic ones as names)."""
    import onnx

    for value in onnx.load(path, load_external_data=False).graph.input:
        if value.name == "img":
            return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    raise ValueError(f"{path} has no 'img' input; export it with tools/export_onnx.py")


def check_onnx_input(path: str, img_shape: Sequence[int]) -> None:
    """Raise when ``path`` is missing or takes images of another shape than ``img_shape``."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--onnx: file not found: {path}")
    expected = onnx_image_shape(path)
    if list(expected[1:]) != list(img_shape[1:]):
        raise ValueError(f"--onnx {path} takes img of shape {expected}, but the benchmark batch is "
                         f"{list(img_shape)}; export the model at this config's resolution")


def time_onnx(path: str, batch: dict[str, Any], warmup: int, iters: int) -> dict[str, float]:
    """onnxruntime CPU latency of one frame of ``batch`` (memory carried between runs)."""
    from projects.mmdet3d_plugin.export.ort_runner import time_onnx_model
    from projects.mmdet3d_plugin.export.streaming_wrapper import frame_inputs

    frame = {key: value.cpu().numpy() for key, value in frame_inputs(batch).items()}
    return time_onnx_model(path, frame, warmup=warmup, iters=iters)


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report of :func:`main`'s result."""
    env = result["environment"]
    lines = [
        f"config: {result['config']}",
        f"weights: {result['weights']}",
        f"inputs: {result['inputs']}; batch {result['batch_size']}, img {result['img_shape']}, "
        f"streaming in order; {result['iters']} timed after {result['warmup']} warm-up",
        f"device: {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"{env['cpu_count']} CPUs, load average {env.get('load_average_1m', 'n/a')}",
        f"precision and compilation: {describe_run(result)}",
        f"{'stage':<10}{'mean ms':>10}{'p50 ms':>10}{'p90 ms':>10}{'share':>8}{'params M':>10}{'GFLOPs':>9}",
    ]
    total_mean = result["latency"]["total"]["mean_ms"]
    params = dict(result["params"], total=result["params"]["inference"])
    for stage in STAGES + ("total",):
        lat = result["latency"][stage]
        lines.append(f"{stage:<10}{lat['mean_ms']:>10.1f}{lat['p50_ms']:>10.1f}{lat['p90_ms']:>10.1f}"
                     f"{100 * lat['mean_ms'] / total_mean:>7.1f}%{params[stage] / 1e6:>10.2f}"
                     f"{result['gflops'][stage]:>9.2f}")
    lines.append(f"params: {result['params']['inference'] / 1e6:.2f} M run in predict; "
                 f"{result['params']['total'] / 1e6:.2f} M in all, with the training-only 2D auxiliary head "
                 f"({result['params']['aux_2d_head'] / 1e6:.2f} M)")
    lines.append(f"FPS: {result['fps']:.2f} frames/s (batch {result['batch_size']} / mean latency)")
    lines.append(f"peak memory: {result['peak_memory_mib']:.0f} MiB ({result['peak_memory_method']})")
    if "onnxruntime" in result:
        ort = result["onnxruntime"]
        lines.append(f"onnxruntime cpu: mean {ort['latency_ms_mean']:.1f} ms, median "
                     f"{ort['latency_ms_median']:.1f} ms, {ort['fps'] * result['batch_size']:.2f} frames/s; "
                     f"ratio torch/ort (mean) {total_mean / ort['latency_ms_mean']:.2f}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--out``); returns the result dict."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    compile_mode = args.compile_mode if args.compile else None
    check_acceleration(args.precision, compile_mode, args.cuda_graphs, device, args.cuda_graph_head)
    cfg = load_config(args.config, args.cfg_options)
    model = build_detector(cfg, args.checkpoint, device)
    batches, source = input_batches(cfg, args.batch_size, args.warmup + args.iters)
    batches = [move_to_device(batch, device) for batch in batches]
    if args.onnx:
        check_onnx_input(args.onnx, batches[0]["img"].shape)
    with torch.no_grad():
        gflops = count_gflops(model, lambda: model(batches[-1], mode="predict"))
    params = count_parameters(model)
    reference = copy.deepcopy(model) if args.parity else None
    plan = accelerate(model, compile_mode, args.compile_backend, args.cuda_graphs, args.cuda_graph_head)
    run = predictor(model, args.precision, device, cuda_graphs=args.cuda_graphs)
    parity = None
    if reference is not None:
        expected = record_head_outputs(reference, predictor(reference, "fp32", device), batches)
        del reference
        parity = parity_report(expected, record_head_outputs(model, run, batches), args.parity_top_k)
    model.reset_memory()
    latency, memory = time_predict(model, run, batches, args.warmup, device)
    result: dict[str, Any] = dict(
        config=args.config, weights=args.checkpoint or "random (no checkpoint given)", inputs=source,
        batch_size=args.batch_size, img_shape=list(batches[0]["img"].shape), iters=args.iters,
        warmup=args.warmup, precision=args.precision, acceleration=plan, environment=environment(device),
        latency=latency, fps=args.batch_size * 1e3 / latency["total"]["mean_ms"], params=params,
        gflops=gflops, peak_memory_mib=memory.peak_mib, peak_memory_method=memory.method,
    )
    if parity is not None:
        result["parity"] = parity
    if args.onnx:
        result["onnxruntime"] = time_onnx(args.onnx, batches[-1], args.warmup, args.iters)
    print(format_table(result))
    if parity is not None:
        print(format_parity(parity, describe_run(result)))
    write_result(result, args.out)
    return result


def describe_run(result: dict[str, Any]) -> str:
    """``precision`` and how each part runs, in words (e.g. ``bf16, img_backbone: cuda graph, ...``)."""
    return ", ".join([result["precision"]] + [f"{part}: {how}" for part, how in result["acceleration"].items()])


if __name__ == "__main__":
    main()
