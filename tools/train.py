"""Train a detector from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume]``.

Under ``torchrun`` (see ``tools/dist_train.sh``) every process runs this script and the
trainer runs DDP (NCCL on GPUs, gloo on CPU processes).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mmengine.config import DictAction

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.engine.runner import load_config, train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="python config file")
    parser.add_argument("--work-dir", help="where checkpoints and logs go (default work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const=True, default=False,
                        help="continue from WORK_DIR/latest.pth, or from the given checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="random seed (sampler, augmentation, init)")
    parser.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. runner.max_iters=100")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    work_dir = Path(args.work_dir or Path("work_dirs") / Path(args.config).stem)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(work_dir / Path(args.config).name))
    train(cfg, work_dir, resume=args.resume, seed=args.seed, deterministic=args.deterministic)
    print(f"Checkpoints and logs: {work_dir}")


if __name__ == "__main__":
    main()
