"""The demo's budgets and configs (the full run is exercised by `python tools/demo.py --quick`)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("demo", REPO / "tools" / "demo.py")
demo = importlib.util.module_from_spec(spec)
sys.modules["demo"] = demo  # dataclasses resolve their module through sys.modules
spec.loader.exec_module(demo)


def test_quick_budget_is_smaller_than_the_default():
    assert demo.QUICK.student_iters < demo.DEFAULT.student_iters
    assert demo.QUICK.train_scenes + demo.QUICK.val_scenes <= 10  # v1.0-mini scene names
    for path in (demo.TEACHER_CFG, demo.STUDENT_CFG, demo.DISTILL_CFG):
        assert path.is_file()
