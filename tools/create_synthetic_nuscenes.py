"""Generate the synthetic nuScenes-format world.

Example::

    python tools/create_synthetic_nuscenes.py --out data/nuscenes_synth
    python tools/create_synthetic_nuscenes.py --out data/synth_tv --version v1.0-trainval \\
        --train-scenes 40 --val-scenes 10 --samples-per-scene 40 --image-size 1600 900
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(description="Generate a synthetic nuScenes-format world.")
    parser.add_argument("--out", required=True, help="data root to create")
    parser.add_argument("--version", default="v1.0-mini", choices=["v1.0-mini", "v1.0-trainval"])
    parser.add_argument("--train-scenes", type=int, default=8)
    parser.add_argument("--val-scenes", type=int, default=2)
    parser.add_argument("--samples-per-scene", type=int, default=40)
    parser.add_argument("--image-size", type=int, nargs=2, default=(800, 450), metavar=("W", "H"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def directory_size(root: Path) -> int:
    """Total size in bytes of the files under ``root``."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> Path:
    """Generate the world and print its size on disk and the time taken."""
    from tqdm import tqdm

    from projects.mmdet3d_plugin.datasets.synthetic.generator import generate_world

    args = parse_args(argv)
    start = time.perf_counter()
    with tqdm(total=args.train_scenes + args.val_scenes, unit="scene") as bar:
        root = generate_world(
            args.out, version=args.version, train_scenes=args.train_scenes, val_scenes=args.val_scenes,
            samples_per_scene=args.samples_per_scene, image_size=tuple(args.image_size), seed=args.seed,
            progress=lambda name: (bar.set_postfix_str(name), bar.update(1)),
        )
    elapsed = time.perf_counter() - start
    size_mb = directory_size(root) / 2**20
    print(f"wrote {root} ({args.version}): {size_mb:.1f} MiB on disk in {elapsed:.1f} s")
    return root


if __name__ == "__main__":
    main()
