"""Cost of the parameter-free BEV lifting: sparse (``BEVLifting``) against dense ``grid_sample``.

    python tools/benchmark_bev_lifting.py [--image-size 256 704] [--stride 16] [--channels 256]
        [--bev-size 128 128] [--num-heights 4] [--pc-range -51.2 -51.2 -5 51.2 51.2 3]
        [--height-reduction mean|max] [--batch-size 1] [--iters 5] [--warmup 1]
        [--device cpu|cuda] [--out result.json]

The input is one FPN level of a nuScenes-like six-camera ring
(``export/example_frames.ring_camera``: 60 degree steps, 1.5 m up) at ``image_size / stride``,
standard-normal features. Two variants run interleaved (their order alternates per iteration)
in one process on the same inputs:

* ``sparse``: ``BEVLifting`` (samples only the (voxel, camera) pairs in which the camera sees
  the voxel: one ``embedding_bag`` over the bilinear taps of its plan);
* ``dense``: ``harmodistill_tools.bev_lifting_reference.dense_bev_lifting`` (``grid_sample`` of
  every camera at every voxel, masked afterwards).

Per variant: forward and backward time (the backward of ``sum(bev * w)`` for a fixed random
``w``: what a BEV loss asks of the lifting) and peak memory of one forward + backward, and the
ratio dense / sparse of the mean times. The default grid is that of
``projects/configs/Distill3D/distill_raydn_r50_r18_bev.py``. Also printed: the share of
voxels some camera sees and the mean number of cameras per seen voxel (what the sparse
variant saves).
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor
from tqdm import tqdm

from harmodistill_tools.benchmarking import (PeakMemoryMeter, environment, latency_stats, resolve_device,
                                             synchronizer, write_result)
from harmodistill_tools.bev_lifting_reference import dense_bev_lifting
from projects.mmdet3d_plugin.export.example_frames import ring_camera
from projects.mmdet3d_plugin.kd.bev.lifting import BEVLifting

NUM_CAMS = 6
VARIANTS = ("sparse", "dense")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, nargs=2, default=(256, 704), metavar=("H", "W"))
    parser.add_argument("--stride", type=int, default=16, help="FPN level stride: features are image_size / stride")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--bev-size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    parser.add_argument("--num-heights", type=int, default=4)
    parser.add_argument("--pc-range", type=float, nargs=6, default=(-51.2, -51.2, -5.0, 51.2, 51.2, 3.0))
    parser.add_argument("--height-reduction", default="mean", choices=("mean", "max"))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations of each variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations of each variant first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1 or args.stride < 1:
        parser.error(f"need --iters >= 1, --warmup >= 0, --batch-size >= 1, --stride >= 1; got {args.iters}, "
                     f"{args.warmup}, {args.batch_size}, {args.stride}")
    if any(size % args.stride for size in args.image_size):
        parser.error(f"--image-size {tuple(args.image_size)} must be a multiple of --stride {args.stride}")
    return args


def ring_inputs(args: argparse.Namespace, device: torch.device) -> tuple[Tensor, Tensor, list[tuple[int, int]]]:
    """``features (B * 6, C, H_f, W_f)``, ``lidar2img (B, 6, 4, 4)`` and ``pad_shape`` of the ring."""
    image = tuple(args.image_size)
    cams = [ring_camera(2 * math.pi * n / NUM_CAMS, image) for n in range(NUM_CAMS)]
    lidar2img = torch.stack([intrinsics @ extrinsics for intrinsics, extrinsics in cams])
    lidar2img = lidar2img.expand(args.batch_size, -1, -1, -1).contiguous().to(device)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(args.batch_size * NUM_CAMS, args.channels, image[0] // args.stride,
                           image[1] // args.stride, generator=generator).to(device)
    return features, lidar2img, [image] * args.batch_size


def coverage(lifting: BEVLifting, lidar2img: Tensor, pad_shape: list[tuple[int, int]]) -> dict[str, float]:
    """Share of voxels seen by some camera and mean cameras per seen voxel."""
    seen = lifting.project(lidar2img, pad_shape)[1]
    count = seen.sum(dim=1)
    return dict(seen_voxel_share=float((count > 0).float().mean()),
                cameras_per_seen_voxel=float(count[count > 0].float().mean()))


def time_step(run: Callable[[Tensor], Tensor], features: Tensor, weights: Tensor,
              sync: Callable[[], None]) -> tuple[float, float]:
    """Forward and backward seconds of ``sum(run(features) * weights)``."""
    leaf = features.detach().requires_grad_(True)
    sync()
    start = time.perf_counter()
    bev = run(leaf)
    sync()
    middle = time.perf_counter()
    (bev * weights).sum().backward()
    sync()
    return middle - start, time.perf_counter() - middle


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--out``); returns the result dict."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    sync = synchronizer(device)
    lifting = BEVLifting(args.pc_range, args.bev_size, args.num_heights, args.height_reduction)
    features, lidar2img, pad_shape = ring_inputs(args, device)
    runs = dict(sparse=lambda f: lifting(f, lidar2img, pad_shape),
                dense=lambda f: dense_bev_lifting(lifting, f, lidar2img, pad_shape))
    weights = torch.randn(args.batch_size, args.channels, *args.bev_size,
                          generator=torch.Generator().manual_seed(1)).to(device)
    times: dict[str, dict[str, list[float]]] = {name: dict(forward=[], backward=[], total=[]) for name in VARIANTS}
    for index in tqdm(range(args.warmup + args.iters), desc="lifting", unit="iter"):
        for name in (VARIANTS if index % 2 == 0 else VARIANTS[::-1]):
            forward, backward = time_step(runs[name], features, weights, sync)
            if index >= args.warmup:
                for part, seconds in (("forward", forward), ("backward", backward), ("total", forward + backward)):
                    times[name][part].append(seconds)
    variants: dict[str, Any] = {}
    for name in VARIANTS:
        meter = PeakMemoryMeter(device)
        with meter:
            time_step(runs[name], features, weights, sync)
        variants[name] = {part: latency_stats(values) for part, values in times[name].items()}
        variants[name]["peak_memory_mib"] = meter.peak_mib
    result: dict[str, Any] = dict(
        features=list(features.shape), bev_size=list(args.bev_size), num_heights=args.num_heights,
        height_reduction=args.height_reduction, iters=args.iters, warmup=args.warmup,
        **coverage(lifting, lidar2img, pad_shape), variants=variants,
        dense_over_sparse={part: variants["dense"][part]["mean_ms"] / variants["sparse"][part]["mean_ms"]
                           for part in ("forward", "backward", "total")},
        peak_memory_method=meter.method, environment=environment(device))
    print(format_table(result))
    write_result(result, args.out)
    return result


def format_table(result: dict[str, Any]) -> str:
    """The result as a few lines of text."""
    lines = [f"features {tuple(result['features'])} -> BEV {tuple(result['bev_size'])} x {result['num_heights']} "
             f"heights ({result['height_reduction']}); seen voxels {100 * result['seen_voxel_share']:.1f} %, "
             f"{result['cameras_per_seen_voxel']:.2f} cameras per seen voxel",
             f"{'variant':<8} {'forward ms':>11} {'backward ms':>12} {'total ms':>9} {'peak MiB':>9}"]
    for name, stats in result["variants"].items():
        lines.append(f"{name:<8} {stats['forward']['mean_ms']:>11.1f} {stats['backward']['mean_ms']:>12.1f} "
                     f"{stats['total']['mean_ms']:>9.1f} {stats['peak_memory_mib']:>9.0f}")
    ratio = result["dense_over_sparse"]
    lines.append(f"dense / sparse: forward {ratio['forward']:.2f}x, backward {ratio['backward']:.2f}x, "
                 f"total {ratio['total']:.2f}x ({result['peak_memory_method']})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
