"""Create the StreamPETR temporal info files of a nuScenes(-format) data root.

    python tools/create_data_nusc.py --root-path data/nuscenes --out-dir data/nuscenes \
        --extra-tag nuscenes2d --version v1.0-trainval

writes ``{out-dir}/{extra-tag}_temporal_infos_{train,val}.pkl`` (``_test`` for v1.0-test).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root-path", required=True, help="nuScenes data root (samples/, maps/, v1.0-*/)")
    parser.add_argument("--out-dir", required=True, help="folder for the info files")
    parser.add_argument("--extra-tag", default="nuscenes2d", help="file name prefix (default: nuscenes2d)")
    parser.add_argument(
        "--version",
        default="v1.0-trainval",
        choices=("v1.0-trainval", "v1.0-mini", "v1.0-test"),
        help="nuScenes version (default: v1.0-trainval)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Convert and print the written files; returns the exit status."""
    from projects.mmdet3d_plugin.datasets.nuscenes_converter import create_nuscenes_infos

    args = parse_args(argv)
    written = create_nuscenes_infos(args.root_path, args.out_dir, extra_tag=args.extra_tag, version=args.version)
    for split, path in written.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
