"""Helpers for tools that chain the project's own command-line tools (the demo, the results).

Each step is run as the command a user would type, printed before it runs, so that any step of
a long experiment can be rerun alone.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from projects.mmdet3d_plugin.paths import REPO_ROOT


def run_step(cmd: list[str], log: Path, env: Mapping[str, str] | None = None) -> float:
    """Print ``cmd``, run it from the repository root appending its output to ``log``.

    ``env`` holds variables set on top of this process's environment (e.g. ``OMP_NUM_THREADS``).

    Returns:
        The step's wall time in seconds.

    Raises:
        SystemExit: the command failed (the message names the log holding its output).
    """
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        result = subprocess.run(cmd, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                env={**os.environ, **env} if env else None)
    if result.returncode != 0:
        raise SystemExit(f"step failed (exit {result.returncode}); its output is in {log}")
    seconds = time.perf_counter() - start
    print(f"  done in {seconds:.0f} s (log: {log})", flush=True)
    return seconds


def data_options(data_root: Path) -> list[str]:
    """``--cfg-options`` pointing every split of a synthetic config at ``data_root``."""
    splits = {"train": "train", "val": "val", "test": "val"}
    return [opt for split, infos in splits.items() for opt in (
        f"data.{split}.data_root={data_root}/",
        f"data.{split}.ann_file={data_root}/nuscenes2d_temporal_infos_{infos}.pkl")]


def schedule_options(iters: int, evaluate: bool = True) -> list[str]:
    """Iterations, warmup and checkpoint interval for an ``iters`` budget.

    With ``evaluate`` the run ends with one official evaluation (``WORK_DIR/eval``); without
    it the run only trains (for tools that evaluate the checkpoint themselves).
    """
    return [f"runner.max_iters={iters}", f"lr_config.warmup_iters={max(1, min(50, iters // 10))}",
            f"checkpoint_config.interval={iters}", f"evaluation.interval={iters if evaluate else 0}"]
