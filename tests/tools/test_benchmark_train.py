"""tools/benchmark_train.py on the tiny RayDN and its tiny distiller; nothing is timed."""
from __future__ import annotations

import json

import pytest
import torch
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = str(REPO / "tests" / "engine" / "configs" / "tiny_raydn.py")
TINY_DISTILL = str(REPO / "tests" / "kd" / "configs" / "tiny_distill_raydn.py")


def check_shares(result: dict) -> None:
    """Step parts add up to the step, forward parts to the forward; every time positive."""
    assert sum(part["share"] for part in result["parts"].values()) == pytest.approx(1.0, abs=1e-6)
    forward = result["parts"]["forward"]["share"]
    assert sum(part["share"] for part in result["forward_parts"].values()) == pytest.approx(forward, abs=1e-6)
    assert result["loss_parts"]["assign"]["share"] <= result["forward_parts"]["loss"]["share"]
    for group in ("parts", "forward_parts", "loss_parts"):
        for name, stats in result[group].items():
            assert set(stats) == {"mean_ms", "p50_ms", "p90_ms", "share"}
            if name not in ("data_wait", "h2d", "forward_other"):
                assert stats["mean_ms"] > 0, name


def test_detector_steps_and_profile(load_tool, train_data_options, tmp_path, capsys) -> None:
    out, prof = tmp_path / "train.json", tmp_path / "profile"
    result = load_tool("benchmark_train").main([TINY_CONFIG, "--steps", "2", "--warmup", "0", "--batch-size", "2",
                                                "--out", str(out), "--profile", str(prof), "--profile-steps", "1",
                                                *train_data_options])
    printed = capsys.readouterr().out
    assert result["model_type"] == "RepDetr3D" and result["samples"] == 4 and result["batch_size"] == 2
    assert result["samples_per_s"] > 0 and result["step"]["mean_ms"] > 0
    assert set(result["forward_parts"]) == {"backbone_neck", "head_forward", "loss", "forward_other"}
    check_shares(result)
    assert result["peak_memory_mib"] >= 0 and result["precision"].startswith("fp32")
    for word in ("samples/s", "backbone_neck", "assign", "peak memory", "self_cpu_time_total"):
        assert word in printed
    assert (prof / "trace.json").stat().st_size > 0 and (prof / "top_ops_self_cpu.txt").is_file()
    assert json.loads(out.read_text())["samples"] == 4


def test_distiller_reports_teacher_and_distillation_losses(load_tool, train_data_options, capsys) -> None:
    result = load_tool("benchmark_train").main([TINY_DISTILL, "--steps", "1", "--warmup", "0", "--random-teacher",
                                                *train_data_options])
    assert result["model_type"] == "HarmoDistiller" and result["weights"].count("UNTRAINED") == 1
    assert {"teacher_forward", "distill_losses"} <= set(result["forward_parts"])
    check_shares(result)
    assert 0 < result["distillation_share"] < 1 and "distillation" in capsys.readouterr().out


def test_precision_follows_the_option_or_the_config(load_tool) -> None:
    tool = load_tool("benchmark_train")
    cpu = torch.device("cpu")
    cfg = tool.load_config(TINY_CONFIG)
    assert tool.training_precision(cfg, None, cpu).train == "fp32"
    bf16 = tool.training_precision(cfg, "bf16", cpu)
    assert (bf16.train, bf16.scope) == ("bf16-mixed", "model")
    cfg.fp16 = dict(loss_scale="dynamic")  # upstream's fp16 hook: falls back to fp32 without a GPU
    assert tool.training_precision(cfg, None, cpu).train == "fp32"


def test_method_timer_restores_the_methods() -> None:
    from harmodistill_tools.train_timing import MethodTimer

    class Head(torch.nn.Module):
        def loss(self, depth: int) -> int:
            return depth if depth == 0 else self.loss(depth - 1)

    head = Head()
    with MethodTimer({"loss": [(head, "loss")]}, lambda: None) as timer:
        assert head.loss(3) == 0
        assert timer.pop()["loss"] > 0 and timer.pop()["loss"] == 0.0
    assert "loss" not in vars(head) and head.loss(1) == 0


def test_bad_inputs_give_clear_errors(load_tool, tmp_path) -> None:
    tool = load_tool("benchmark_train")
    for option in (["--steps", "0"], ["--warmup", "-1"], ["--workers", "-2"], ["--batch-size", "0"],
                   ["--precision", "fp8"], ["--count-syncs", "-1"]):
        with pytest.raises(SystemExit):
            tool.parse_args([TINY_CONFIG, *option])
    with pytest.raises(FileNotFoundError, match="Config file not found"):
        tool.main([str(tmp_path / "missing.py")])
    with pytest.raises(FileNotFoundError, match="training data"):
        tool.main([TINY_CONFIG, "--cfg-options", f"data.train.ann_file={tmp_path / 'no.pkl'}"])
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            tool.main([TINY_CONFIG, "--device", "cuda"])
        with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
            tool.main([TINY_CONFIG, "--precision", "fp16"])
    with pytest.raises(ValueError, match="--count-syncs needs a CUDA device"):
        tool.main([TINY_CONFIG, "--count-syncs", "2"])
    with pytest.raises(ValueError, match="cpu or cuda"):
        tool.main([TINY_CONFIG, "--device", "mps"])
