"""The demo's command construction (the full run is exercised by `python tools/demo.py --quick`)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("demo", REPO / "tools" / "demo.py")
demo = importlib.util.module_from_spec(spec)
sys.modules["demo"] = demo  # dataclasses resolve their module through sys.modules
spec.loader.exec_module(demo)


def as_options(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def test_options_point_every_split_at_the_world_and_set_the_budget(tmp_path):
    options = as_options(demo.data_options(tmp_path) + demo.schedule_options(30))
    cfg = load_config(demo.STUDENT_CFG, {k: int(v) if v.isdigit() else v for k, v in options.items()})
    for split, infos in (("train", "train"), ("val", "val"), ("test", "val")):
        assert cfg.data[split].data_root == f"{tmp_path}/"
        assert cfg.data[split].ann_file == f"{tmp_path}/nuscenes2d_temporal_infos_{infos}.pkl"
    runtime = parse_runtime(cfg)
    assert runtime.schedule.max_iters == 30 and runtime.schedule.warmup_iters == 3
    assert runtime.checkpoint_interval == 30 and runtime.eval_interval == 30


def test_quick_budget_is_smaller_than_the_default():
    assert demo.QUICK.student_iters < demo.DEFAULT.student_iters
    assert demo.QUICK.train_scenes + demo.QUICK.val_scenes <= 10  # v1.0-mini scene names
    for path in (demo.TEACHER_CFG, demo.STUDENT_CFG, demo.DISTILL_CFG):
        assert path.is_file()
