"""The command line shared by ``tools/train.py`` and ``tools/distillation.py``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

from mmengine.config import Config, DictAction

from .precision import PRECISIONS
from .runner import build_model, load_config, train
from .runtime_config import RuntimeSpec, parse_runtime


def train_arg_parser(description: str, config_help: str, cfg_options_example: str) -> argparse.ArgumentParser:
    """``CONFIG [--work-dir] [--resume [CKPT]] [--seed] [--deterministic] [--cfg-options ...]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("config", help=config_help)
    parser.add_argument("--work-dir", help="where checkpoints and logs go (default work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const=True, default=False,
                        help="continue from WORK_DIR/latest.pth, or from the given checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="random seed (sampler, augmentation, init)")
    parser.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="training precision over the whole model (default: the config's; see docs/training.md)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help=f"override config keys, e.g. {cfg_options_example}")
    return parser


def validate_config(cfg: Config) -> RuntimeSpec:
    """Everything checkable before a work dir exists: the top-level keys and runtime sections
    (:func:`.runtime_config.parse_runtime`) and the model, built once without its pretrained
    weights (``type`` and constructor-argument typos, a missing teacher checkpoint).

    Raises:
        KeyError, ValueError, TypeError: a config key (named, with close matches) is wrong;
            ``registry.ConfigBuildError`` for the model's keys.
    """
    runtime = parse_runtime(cfg)
    build_model(cfg, init_weights=False)
    return runtime


def train_from_args(args: argparse.Namespace,
                    check_config: Optional[Callable[[Config, str], None]] = None) -> Path:
    """Load the config (then ``check_config(cfg, path)``), validate it, save it to the work
    dir, train. Nothing is written before the config is validated.

    Returns:
        The work dir holding checkpoints, logs and the config used.
    """
    cfg = load_config(args.config, args.cfg_options)
    if check_config is not None:
        check_config(cfg, args.config)
    validate_config(cfg)
    work_dir = Path(args.work_dir or Path("work_dirs") / Path(args.config).stem)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(work_dir / Path(args.config).name))
    train(cfg, work_dir, resume=args.resume, seed=args.seed, deterministic=args.deterministic,
          precision=args.precision)
    return work_dir
