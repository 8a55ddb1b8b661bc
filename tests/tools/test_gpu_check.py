"""tools/gpu_check.sh end to end in its CPU smoke mode, and tools/gpu_check_summary.py."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from projects.mmdet3d_plugin.paths import REPO_ROOT

CUDA_ONLY = {"latency_tf32", "graphs_r18_fp32", "graphs_r18_bf16", "graphs_r50_fp32", "graphs_r50_bf16",
             "graphs_head_r18_fp32", "graphs_head_r50_fp32"}
RUN_ON_CPU = {"latency_fp32", "latency_bf16", "world", "train", "distill", "compile_r18_default"}


@pytest.mark.slow
def test_cpu_smoke_runs_every_step(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(["bash", str(REPO_ROOT / "tools" / "gpu_check.sh"), "--cpu-smoke", str(results)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in results.iterdir()) == ["gpu_check.json", "logs.txt", "summary.md"]
    report = json.loads((results / "gpu_check.json").read_text())
    steps = report["steps"]
    assert set(steps) == CUDA_ONLY | RUN_ON_CPU
    assert {name: steps[name]["status"] for name in RUN_ON_CPU} == {name: "ok" for name in RUN_ON_CPU}, \
        (results / "logs.txt").read_text()[-6000:]
    assert all(steps[name]["status"] == "skipped (CUDA only)" for name in CUDA_ONLY)
    latency = report["results"]["latency_bf16"]
    assert latency["precision"] == "bf16" and set(latency["models"]) == {"raydn_r18", "raydn_r34", "raydn_r50",
                                                                       "streampetr_r50"}
    assert report["results"]["compile_r18_default"]["parity"]["worst"]["topk_overlap"] == 1.0
    summary = (results / "summary.md").read_text()
    for text in ("R18 / R50 p50 latency", "compile_r18_default", "samples/s", "distillation step"):
        assert text in summary


def test_summary_needs_a_results_folder(load_tool, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        load_tool("gpu_check_summary").main([str(tmp_path), "--out", str(tmp_path / "out")])


def test_summary_reports_missing_results_and_targets(load_tool, tmp_path: Path) -> None:
    (tmp_path / "steps.tsv").write_text("step\tstatus\tseconds\nlatency_fp32\tok\t3\ntrain\ttimeout\t120\n")
    models = {name: dict(latency=dict(p50_ms=p50, mean_ms=p50, p90_ms=p50), fps=1e3 / p50, p50_ratio=p50 / 5.0)
              for name, p50 in (("raydn_r18", 5.0), ("raydn_r50", 12.5))}
    (tmp_path / "latency_fp32.json").write_text(json.dumps(dict(precision="fp32", models=models,
                                                                environment=dict(device="cuda:0"))))
    (tmp_path / "train.log").write_text("Traceback: out of time")
    report = load_tool("gpu_check_summary").main([str(tmp_path), "--out", str(tmp_path / "out"), "--elapsed-s", "42"])
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "===== train.log\nTraceback: out of time" in (tmp_path / "out" / "logs.txt").read_text()
    assert report["steps"]["train"]["status"] == "timeout" and "| train | timeout | 120 |" in summary
    assert "fp32 raydn_r18: 200.0 FPS, meets the target 150" in summary
    assert "fp32 raydn_r50: 80.0 FPS, misses the target 100" in summary
    assert "fp32 R18 / R50 p50 latency: 0.400, meets the target 0.6" in summary
    assert "no training result" in summary and "42 s" in summary
