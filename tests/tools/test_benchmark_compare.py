"""tools/benchmark_compare.py on two tiny RayDNs; nothing is timed."""
from __future__ import annotations

import json

import pytest
import torch

from projects.mmdet3d_plugin.models.detectors.base import build_detector
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = str(REPO / "tests" / "engine" / "configs" / "tiny_raydn.py")


def test_models_are_timed_interleaved_with_equal_frames(load_tool, tmp_path, capsys) -> None:
    tool = load_tool("benchmark_compare")
    ckpt = tmp_path / "model.pth"
    torch.save(build_detector(tool.load_config(TINY_CONFIG).model).state_dict(), ckpt)
    out = tmp_path / "compare.json"
    result = tool.main(["--model", "trained", TINY_CONFIG, str(ckpt), "--model", "random", TINY_CONFIG,
                        "--frames", "2", "--warmup", "1", "--out", str(out),
                        "--cfg-options", f"data.test.ann_file={tmp_path / 'none.pkl'}"])
    printed = capsys.readouterr().out
    assert list(result["models"]) == ["trained", "random"] and "interleaved" in printed
    for name, model in result["models"].items():
        assert name in printed and model["timed_frames"] == 2
        assert set(model["latency"]) == {"mean_ms", "p50_ms", "p90_ms"} and model["fps"] > 0
        assert model["inputs"].startswith("synthetic frames")
    assert result["models"]["trained"]["weights"] == str(ckpt)
    assert result["models"]["random"]["weights"].startswith("random")
    assert result["models"]["trained"]["p50_ratio"] == 1.0
    assert result["models"]["trained"]["params"] == result["models"]["random"]["params"]
    assert json.loads(out.read_text())["frames"] == 2


def test_bad_arguments_are_refused(load_tool, tmp_path) -> None:
    tool = load_tool("benchmark_compare")
    for argv in ([], ["--model", "a"], ["--model", "a", TINY_CONFIG, "x", "y"],
                 ["--model", "a", TINY_CONFIG, "--model", "a", TINY_CONFIG],
                 ["--model", "a", TINY_CONFIG, "--frames", "0"]):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        tool.main(["--model", "a", TINY_CONFIG, str(tmp_path / "missing.pth")])
