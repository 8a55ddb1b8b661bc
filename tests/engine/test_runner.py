"""End to end through the Lightning engine on the tiny generated world."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.engine import runner
from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv, latest_checkpoint
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = REPO / "tests" / "engine" / "configs" / "tiny_raydn.py"
CPU = LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1)


def tiny_cfg(world: Path, infos: dict[str, Path], **overrides):
    options = {
        "data.train.data_root": str(world), "data.train.ann_file": str(infos["train"]),
        "data.val.data_root": str(world), "data.val.ann_file": str(infos["val"]),
        "data.test.data_root": str(world), "data.test.ann_file": str(infos["val"]),
    }
    options.update(overrides)
    return load_config(TINY_CONFIG, options)


def weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.model.state_dict().items()}


@pytest.mark.slow
def test_kill_and_resume_reproduces_the_uninterrupted_run(synthetic_world, synthetic_infos, kill_at, tmp_path):
    cfg = tiny_cfg(synthetic_world, synthetic_infos, **{"evaluation.interval": 0})
    straight = train(cfg, tmp_path / "straight", seed=1, env=CPU, enable_progress_bar=False)
    assert latest_checkpoint(tmp_path / "straight").is_file()
    assert not (tmp_path / "straight" / "eval").exists() and straight.last_metrics == {}

    killed_dir = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, killed_dir, seed=1, env=CPU, enable_progress_bar=False, extra_callbacks=[kill_at(4)])
    saved = torch.load(latest_checkpoint(killed_dir), weights_only=True)
    assert saved["global_step"] == 3
    resumed = train(cfg, killed_dir, resume=True, seed=1, env=CPU, enable_progress_bar=False)

    expected, got = weights(straight), weights(resumed)
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"resumed weights differ from the uninterrupted run: {different[:5]}"


@pytest.mark.slow
def test_train_evaluates_and_test_reloads_the_checkpoint(synthetic_world, synthetic_infos, tmp_path):
    cfg = tiny_cfg(synthetic_world, synthetic_infos, **{"runner.max_iters": 2, "evaluation.interval": 2,
                                                       "checkpoint_config.interval": 2})
    module = train(cfg, tmp_path, seed=0, env=CPU, enable_progress_bar=False)
    metrics = module.last_metrics
    assert {"NDS", "mAP"} <= set(metrics) and 0.0 <= metrics["NDS"] <= 1.0
    assert (tmp_path / "eval" / "results_nusc.json").is_file()
    assert list((tmp_path / "logs").rglob("metrics.csv")), "CSV log missing"
    again = runner.test(cfg, latest_checkpoint(tmp_path), tmp_path / "test", env=CPU, enable_progress_bar=False)
    assert again["NDS"] == pytest.approx(metrics["NDS"])


def test_resume_without_a_checkpoint_is_a_clear_error(synthetic_world, synthetic_infos, tmp_path):
    cfg = tiny_cfg(synthetic_world, synthetic_infos)
    with pytest.raises(FileNotFoundError, match="latest.pth"):
        train(cfg, tmp_path, resume=True, env=CPU, enable_progress_bar=False)


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_trains(synthetic_world, synthetic_infos, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    options = [
        f"data.train.data_root={synthetic_world}", f"data.train.ann_file={synthetic_infos['train']}",
        f"data.val.data_root={synthetic_world}", f"data.val.ann_file={synthetic_infos['val']}",
        "runner.max_iters=2", "checkpoint_config.interval=2", "evaluation.interval=0",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29641",
         str(REPO / "tools" / "train.py"), str(TINY_CONFIG), "--work-dir", str(tmp_path), "--cfg-options", *options],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(latest_checkpoint(tmp_path), weights_only=True)
    assert saved["global_step"] == 2
