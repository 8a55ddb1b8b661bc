"""Command pieces shared by tools/demo.py and tools/distill_results.py."""
from __future__ import annotations

import sys

import pytest

from harmodistill_tools.steps import data_options, run_step, schedule_options
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime
from projects.mmdet3d_plugin.paths import REPO_ROOT

STUDENT_CFG = REPO_ROOT / "projects" / "configs" / "synthetic" / "raydn_r18_synthetic.py"


def as_options(items: list[str]) -> dict:
    pairs = (item.split("=", 1) for item in items)
    return {k: int(v) if v.isdigit() else v for k, v in pairs}


def test_options_point_every_split_at_the_world_and_set_the_budget(tmp_path):
    cfg = load_config(STUDENT_CFG, as_options(data_options(tmp_path) + schedule_options(30)))
    for split, infos in (("train", "train"), ("val", "val"), ("test", "val")):
        assert cfg.data[split].data_root == f"{tmp_path}/"
        assert cfg.data[split].ann_file == f"{tmp_path}/nuscenes2d_temporal_infos_{infos}.pkl"
    runtime = parse_runtime(cfg)
    assert runtime.schedule.max_iters == 30 and runtime.schedule.warmup_iters == 3
    assert runtime.checkpoint_interval == 30 and runtime.eval_interval == 30


def test_schedule_without_evaluation_switches_it_off(tmp_path):
    cfg = load_config(STUDENT_CFG, as_options(schedule_options(30, evaluate=False)))
    assert parse_runtime(cfg).eval_interval == 0


def test_warmup_is_capped_for_long_budgets():
    options = as_options(schedule_options(2000))
    assert options["lr_config.warmup_iters"] == 50


def test_run_step_logs_output_and_stops_on_failure(tmp_path, capsys):
    log = tmp_path / "logs" / "step.log"
    seconds = run_step([sys.executable, "-c", "print('hello from the step')"], log)
    assert seconds >= 0 and "hello from the step" in log.read_text()
    assert "$ " in capsys.readouterr().out  # the command is printed before it runs
    with pytest.raises(SystemExit, match="exit 3.*step.log"):
        run_step([sys.executable, "-c", "import sys; sys.exit(3)"], log)
