"""The demo's budgets and configs (the full run is exercised by `python tools/demo.py --quick`)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
spec = importlib.util.spec_from_file_location("demo", REPO / "tools" / "demo.py")
demo = importlib.util.module_from_spec(spec)
sys.modules["demo"] = demo  # dataclasses resolve their module through sys.modules
spec.loader.exec_module(demo)


def test_quick_budget_is_smaller_than_the_default():
    assert demo.QUICK.student_iters < demo.DEFAULT.student_iters
    assert demo.QUICK.train_scenes + demo.QUICK.val_scenes <= 10  # v1.0-mini scene names
    for path in (demo.TEACHER_CFG, demo.STUDENT_CFG, demo.DISTILL_CFG):
        assert path.is_file()



def test_a_given_teacher_is_checked_first_and_used_without_training(tmp_path):
    with pytest.raises(SystemExit, match="--teacher-ckpt .*missing.pth not found"):
        demo.check_teacher_ckpt(tmp_path / "missing.pth")
    assert demo.check_teacher_ckpt(None) is None
    given = tmp_path / "teacher.pth"
    given.write_bytes(b"weights")
    assert demo.check_teacher_ckpt(given) == given.resolve()
    assert demo.train_teacher(demo.QUICK, tmp_path, tmp_path, tmp_path / "log", given) == given
    assert not (tmp_path / "teacher").exists()  # nothing trained


def test_demo_log_records_every_command_it_runs(tmp_path, monkeypatch):
    """Every command the demo runs is in demo.log (``$ <command>``, as it can be pasted)."""
    import json
    import shlex
    import subprocess

    from harmodistill_tools import steps

    ran = []

    def fake_run(cmd, cwd, stdout, stderr, env):
        ran.append(cmd)
        stdout.write(f"output of {cmd[1]}\n")
        out = Path(cmd[cmd.index("--out") + 1]) if "--out" in cmd else None
        if cmd[1] == "tools/test.py":
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps({"NDS": 0.0, "mAP": 0.0}))
        elif cmd[1] == "tools/benchmark_compare.py":
            names = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--model"]
            out.write_text(json.dumps({"models": {name: {"latency": {"p50_ms": 1.0, "p90_ms": 2.0},
                                                         "params": {"inference": 1e6}} for name in names}}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(steps.subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["demo.py", "--quick", "--work-dir", str(tmp_path / "work"),
                                      "--data-root", str(tmp_path / "data")])
    demo.main()
    logged = [line[2:] for line in (tmp_path / "work" / "demo.log").read_text().splitlines()
              if line.startswith("$ ")]
    assert len(ran) == 10  # world (2), teacher, distilled, plain, convert, 3 x test, one latency run
    assert logged == [shlex.join(cmd) for cmd in ran]
    latency = ran[-1]
    assert latency[1] == "tools/benchmark_compare.py" and latency.count("--model") == 3
    assert latency[latency.index("--frames") + 1] == str(demo.QUICK.latency_frames)


def test_latency_column_only_with_enough_frames(capsys):
    rows = {name: {"NDS": 0.1, "mAP": 0.2, "params_m": 11.0, "latency_p50_ms": 130.0, "latency_p90_ms": 150.0}
            for name in ("R18 distilled", "R18 plain")}
    demo.print_table(rows, demo.MIN_LATENCY_FRAMES)
    shown = capsys.readouterr().out
    assert "median (p90)" in shown and "| 130 (150) |" in shown and "interleaved" in shown
    demo.print_table(rows, demo.QUICK.latency_frames)
    quick = capsys.readouterr().out
    assert "latency ms" not in quick and "No latency column" in quick and "--latency-frames" in quick
    assert demo.QUICK.latency_frames < demo.MIN_LATENCY_FRAMES <= demo.DEFAULT.latency_frames
