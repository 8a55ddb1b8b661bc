"""What a checkpoint gives a model under non-strict ``load_from``: tensors per module.

``python tools/load_from_keys.py RECEIVER_CONFIG SOURCE [--list N]``

SOURCE is a checkpoint file, or a config standing for its checkpoints (its model is built
with random weights: keys and shapes are all that matter). Prints, per top-level module, the
tensors and elements that load, and the tensors skipped because their shapes differ, e.g.
what an R50 RayDN checkpoint gives the R18 student::

    python tools/load_from_keys.py projects/configs/RayDN/raydn_r18_704_bs2_seq_428q_nui_24e.py \\
        projects/configs/RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py
"""
from __future__ import annotations

import argparse
import sys

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.engine.initial_weights import compare_load_from


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("receiver", help="config of the model that would load (e.g. the R18 student)")
    parser.add_argument("source", help="checkpoint file, or a config standing for its checkpoints")
    parser.add_argument("--list", type=int, default=1000, metavar="N",
                        help="list at most N skipped keys (default 1000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = compare_load_from(args.receiver, args.source)
    except (CheckpointError, FileNotFoundError) as err:
        print(f"load_from_keys: {err}", file=sys.stderr)
        return 1
    print(report.summary(list_limit=args.list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
