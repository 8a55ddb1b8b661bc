"""Train a detector from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume]``.

Under ``torchrun`` (see ``tools/dist_train.sh``) every process runs this script and the
trainer runs DDP (NCCL on GPUs, gloo on CPU processes).
"""
from __future__ import annotations

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.engine.train_cli import train_arg_parser, train_from_args


def main() -> None:
    parser = train_arg_parser(__doc__.splitlines()[0], "python config file", "runner.max_iters=100")
    work_dir = train_from_args(parser.parse_args())
    print(f"Checkpoints and logs: {work_dir}")


if __name__ == "__main__":
    main()
