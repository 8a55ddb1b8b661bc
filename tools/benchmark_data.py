"""Throughput of the training data pipeline: load + augment + format one 6-camera sample.

Builds ``CustomNuScenesDataset`` with the StreamPETR train pipeline at the demo resolution
(``final_dim`` 128 x 352 from 800 x 450 source images, i.e. exactly half of upstream's
256 x 704 from 1600 x 900 with the same relative ``resize_lim``) and times ``dataset[i]``
in this one process (a DataLoader with W workers runs W such processes). Example::

    python tools/create_synthetic_nuscenes.py --out data/nuscenes_synth
    python tools/create_data_nusc.py --root-path data/nuscenes_synth --out-dir data/nuscenes_synth \
        --version v1.0-mini
    python tools/benchmark_data.py --data-root data/nuscenes_synth \\
        --ann-file data/nuscenes_synth/nuscenes2d_temporal_infos_train.pkl --num-samples 50
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

CLASS_NAMES = [
    "car", "truck", "construction_vehicle", "bus", "trailer", "barrier", "motorcycle", "bicycle",
    "pedestrian", "traffic_cone",
]
COLLECT_KEYS = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "img_timestamp", "ego_pose",
                "ego_pose_inv"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description="Samples/s of the StreamPETR train data pipeline.")
    parser.add_argument("--data-root", required=True, help="nuScenes-format root (real or synthetic)")
    parser.add_argument("--ann-file", required=True, help="temporal info .pkl of the split to read")
    parser.add_argument("--num-samples", type=int, default=50, help="timed samples (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed samples first")
    parser.add_argument("--image-size", type=int, nargs=2, default=(800, 450), metavar=("W", "H"),
                        help="source image size (must match the images)")
    parser.add_argument("--final-dim", type=int, nargs=2, default=(128, 352), metavar=("H", "W"))
    parser.add_argument("--resize-lim", type=float, nargs=2, default=(0.38, 0.55))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def train_pipeline(image_size: tuple[int, int], final_dim: tuple[int, int],
                   resize_lim: tuple[float, float]) -> list[dict[str, Any]]:
    """The StreamPETR train pipeline config for ``image_size`` (W, H) sources."""
    ida_aug_conf = dict(resize_lim=tuple(resize_lim), final_dim=tuple(final_dim), bot_pct_lim=(0.0, 0.0),
                        rot_lim=(0.0, 0.0), H=image_size[1], W=image_size[0], rand_flip=True)
    return [
        dict(type="LoadMultiViewImageFromFiles", to_float32=True),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_bbox=True,
             with_label=True, with_bbox_depth=True),
        dict(type="ObjectRangeFilter", point_cloud_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]),
        dict(type="ObjectNameFilter", classes=CLASS_NAMES),
        dict(type="ResizeCropFlipRotImage", data_aug_conf=ida_aug_conf, training=True),
        dict(type="GlobalRotScaleTransImage", rot_range=[-0.3925, 0.3925], translation_std=[0, 0, 0],
             scale_ratio_range=[0.95, 1.05], reverse_angle=True, training=True),
        dict(type="NormalizeMultiviewImage", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
             to_rgb=True),
        dict(type="PadMultiViewImage", size_divisor=32),
        dict(type="PETRFormatBundle3D", class_names=CLASS_NAMES, collect_keys=COLLECT_KEYS + ["prev_exists"]),
        dict(type="Collect3D", keys=["gt_bboxes_3d", "gt_labels_3d", "img", "gt_bboxes", "gt_labels",
                                     "centers2d", "depths", "prev_exists"] + COLLECT_KEYS),
    ]


class _Timed:
    """Wraps a pipeline step and accumulates its wall time under its class name."""

    def __init__(self, step: Any, totals: dict[str, float]) -> None:
        self.step, self.totals = step, totals

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        out = self.step(results)
        self.totals[type(self.step).__name__] += time.perf_counter() - start
        return out


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark, print samples/s and the time per step; returns samples/s."""
    import torch

    import projects.mmdet3d_plugin  # noqa: F401  (registers datasets and transforms)
    from projects.mmdet3d_plugin.registry import DATASETS

    args = parse_args(argv)
    torch.manual_seed(args.seed)
    dataset = DATASETS.build(dict(
        type="CustomNuScenesDataset", ann_file=args.ann_file, data_root=args.data_root,
        pipeline=train_pipeline(tuple(args.image_size), tuple(args.final_dim), tuple(args.resize_lim)),
    ))
    totals: dict[str, float] = defaultdict(float)
    dataset.pipeline.transforms = [_Timed(step, totals) for step in dataset.pipeline.transforms]
    for i in range(args.warmup):
        dataset[i % len(dataset)]
    totals.clear()
    start = time.perf_counter()
    for i in range(args.num_samples):
        sample = dataset[(args.warmup + i) % len(dataset)]
    elapsed = time.perf_counter() - start
    rate = args.num_samples / elapsed
    print(f"{args.num_samples} samples, img {tuple(sample['img'].shape)}: {rate:.2f} samples/s "
          f"({1000 * elapsed / args.num_samples:.1f} ms/sample, 1 process, torch threads "
          f"{torch.get_num_threads()})")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28s} {1000 * seconds / args.num_samples:7.2f} ms/sample")
    return rate


if __name__ == "__main__":
    main()
