"""Inference latency of several detectors, timed interleaved in one process.

    python tools/benchmark_compare.py --model NAME CONFIG [CKPT] [--model NAME CONFIG [CKPT] ...]
        [--frames 20] [--warmup 3] [--device cpu|cuda] [--precision fp32|tf32|bf16|fp16]
        [--out result.json] [--cfg-options k=v ...]

Every model (RepDetr3D / Petr3D; weights from CKPT, strictly, or random when no CKPT is given
or it is ``-``) streams its own frames (real samples of its config's ``data.test`` when the
info file exists, otherwise synthetic frames of its resolution; batch 1) in eval mode under
``no_grad``. After ``--warmup`` untimed frames, the models take turns frame by frame in a
rotating order (``harmodistill_tools/latency.py``), so load changes on the machine reach them
all alike and the ratios between them mean something even on a shared machine; each gets
exactly ``--frames`` timed frames. Reported per model: median, p90 and mean latency, FPS,
inference parameters, and the median relative to the first model. ``--cfg-options`` apply to
every config (e.g. the data paths). ``--precision`` applies to every model
(``harmodistill_tools/acceleration.py``, as in ``tools/benchmark.py``).
"""
from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence

from mmengine.config import DictAction

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from harmodistill_tools.acceleration import add_precision_option, check_precision, predictor
from harmodistill_tools.benchmarking import (count_parameters, environment, latency_stats, move_to_device,
                                             resolve_device, synchronizer, write_result)
from harmodistill_tools.latency import build_detector, input_batches, interleaved_latency
from projects.mmdet3d_plugin.engine.runner import load_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", action="append", required=True, metavar="NAME CONFIG [CKPT]",
                        help="a model to time: its name, config and (optional) checkpoint; repeat per model")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per model after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames per model first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    add_precision_option(parser)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override keys of every config, e.g. data.test.ann_file=...")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        parser.error(f"need --frames >= 1 and --warmup >= 0; got {args.frames}, {args.warmup}")
    bad = [" ".join(spec) for spec in args.model if len(spec) not in (2, 3)]
    names = [spec[0] for spec in args.model]
    if bad:
        parser.error(f"--model takes NAME CONFIG [CKPT]; got {bad}")
    if len(set(names)) != len(names):
        parser.error(f"--model names must differ; got {names}")
    return args


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report of :func:`main`'s result."""
    env = result["environment"]
    lines = [f"{len(result['models'])} models interleaved (rotating order), {result['frames']} timed frames each "
             f"after {result['warmup']} warm-up, batch 1",
             f"device: {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
             f"{env['cpu_count']} CPUs, load average {env.get('load_average_1m', 'n/a')}; "
             f"precision {result['precision']}",
             f"{'model':<20}{'p50 ms':>10}{'p90 ms':>10}{'mean ms':>10}{'FPS':>8}{'params M':>10}{'p50 ratio':>11}"]
    for name, model in result["models"].items():
        lat = model["latency"]
        lines.append(f"{name:<20}{lat['p50_ms']:>10.1f}{lat['p90_ms']:>10.1f}{lat['mean_ms']:>10.1f}"
                     f"{model['fps']:>8.2f}{model['params']['inference'] / 1e6:>10.2f}{model['p50_ratio']:>11.2f}")
    lines.extend(f"{name}: {model['config']}, weights {model['weights']}; inputs: {model['inputs']}"
                 for name, model in result["models"].items())
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the comparison, print the table (and write ``--out``); returns the result dict."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    check_precision(args.precision, device)
    models, batches, info = {}, {}, {}
    for name, config, *ckpt in args.model:
        checkpoint = ckpt[0] if ckpt and ckpt[0] != "-" else None
        cfg = load_config(config, args.cfg_options)
        models[name] = build_detector(cfg, checkpoint, device)
        frames, source = input_batches(cfg, 1, args.warmup + args.frames)
        batches[name] = [move_to_device(batch, device) for batch in frames]
        info[name] = dict(config=config, weights=checkpoint or "random (no checkpoint given)", inputs=source,
                          params=count_parameters(models[name]))
    predict = {name: predictor(model, args.precision, device) for name, model in models.items()}
    runs = {name: (lambda frame, name=name: predict[name](batches[name][frame])) for name in models}
    seconds = interleaved_latency(runs, args.frames, args.warmup, synchronizer(device), progress=True)
    first = next(iter(seconds))
    reference = latency_stats(seconds[first])["p50_ms"]
    for name, values in seconds.items():
        stats = latency_stats(values)
        info[name].update(latency=stats, timed_frames=len(values), fps=1e3 / stats["mean_ms"],
                          p50_ratio=stats["p50_ms"] / reference)
    result: dict[str, Any] = dict(frames=args.frames, warmup=args.warmup, precision=args.precision,
                                  order="round-robin, rotating",
                                  environment=environment(device), models=info)
    print(format_table(result))
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
