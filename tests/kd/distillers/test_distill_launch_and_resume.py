"""Distillation through tools/dist_distill.sh (2 CPU processes) and its exact resume."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv, latest_checkpoint
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
CONFIGS = REPO / "tests" / "kd" / "configs"
CPU = LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1)


def options(world: Path, infos: dict[str, Path], teacher: Path, **extra) -> dict:
    return {"model.teacher_ckpt": str(teacher), "data.train.ann_file": str(infos["train"]),
            "data.train.data_root": str(world), "data.val.ann_file": str(infos["val"]),
            "data.val.data_root": str(world), **extra}


@pytest.mark.slow
def test_dist_distill_sh_runs_two_cpu_processes(synthetic_world, synthetic_infos, config_teacher_ckpt, tmp_path):
    opts = options(synthetic_world, synthetic_infos, config_teacher_ckpt, **{"evaluation.interval": 0})
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PORT="29643")
    result = subprocess.run(
        ["bash", str(REPO / "tools" / "dist_distill.sh"), str(CONFIGS / "tiny_distill_raydn.py"), "2",
         "--work-dir", str(tmp_path / "work"), "--cfg-options", *(f"{k}={v}" for k, v in opts.items())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(latest_checkpoint(tmp_path / "work"), weights_only=True)
    assert saved["global_step"] == 2
    assert {key.split(".")[0] for key in saved["state_dict"]} == {"student", "teacher"}


@pytest.mark.slow
def test_killed_distillation_resumes_exactly(synthetic_world, synthetic_infos, config_teacher_ckpt, kill_at,
                                             tmp_path):
    cfg = load_config(CONFIGS / "tiny_distill_raydn.py", options(
        synthetic_world, synthetic_infos, config_teacher_ckpt,
        **{"runner.max_iters": 4, "checkpoint_config.interval": 2, "evaluation.interval": 0}))
    straight = train(cfg, tmp_path / "straight", seed=3, env=CPU, enable_progress_bar=False)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, tmp_path / "killed", seed=3, env=CPU, enable_progress_bar=False, extra_callbacks=[kill_at(3)])
    assert torch.load(latest_checkpoint(tmp_path / "killed"), weights_only=True)["global_step"] == 2
    resumed = train(cfg, tmp_path / "killed", resume=True, seed=3, env=CPU, enable_progress_bar=False)
    expected, got = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"resumed distiller differs from the uninterrupted run: {different[:5]}"
