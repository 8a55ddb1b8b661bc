"""tools/benchmark.py on the tiny RayDN; nothing is timed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.models.detectors.base import build_detector
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = str(REPO / "tests" / "engine" / "configs" / "tiny_raydn.py")
STAGES = ("backbone", "neck", "head", "total")


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_options(world: Path, infos: dict[str, Path]) -> list[str]:
    return ["--cfg-options", f"data.test.data_root={world}", f"data.test.ann_file={infos['val']}"]


def test_benchmark_streams_real_samples(synthetic_world, synthetic_infos, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    result = load_tool("benchmark").main([TINY_CONFIG, "--iters", "2", "--warmup", "1", "--out", str(out),
                                          *data_options(synthetic_world, synthetic_infos)])
    printed = capsys.readouterr().out
    assert "real samples of data.test" in result["inputs"] and "real samples" in printed
    assert result["img_shape"] == [1, 6, 3, 64, 192]
    for stage in STAGES:
        assert stage in printed
        assert set(result["latency"][stage]) == {"mean_ms", "p50_ms", "p90_ms"}
        assert result["gflops"][stage] >= 0
    assert result["gflops"]["backbone"] > 0 and result["fps"] > 0
    assert result["params"]["inference"] + result["params"]["aux_2d_head"] == result["params"]["total"]
    assert result["peak_memory_mib"] >= 0 and "FPS" in printed and "peak memory" in printed
    assert json.loads(out.read_text())["params"] == result["params"]


def test_benchmark_falls_back_to_synthetic_frames(tmp_path, capsys) -> None:
    result = load_tool("benchmark").main([TINY_CONFIG, "--iters", "1", "--warmup", "0", "--batch-size", "2",
                                          "--cfg-options", f"data.test.ann_file={tmp_path / 'none.pkl'}"])
    assert result["inputs"].startswith("synthetic frames") and "not found" in result["inputs"]
    assert result["img_shape"] == [2, 6, 3, 64, 192]
    assert "synthetic frames" in capsys.readouterr().out


def test_benchmark_loads_a_checkpoint_strictly(tmp_path) -> None:
    tool = load_tool("benchmark")
    cfg = tool.load_config(TINY_CONFIG)
    ckpt = tmp_path / "model.pth"
    state = build_detector(cfg.model).state_dict()
    torch.save(state, ckpt)
    model = tool.build_detector(cfg, str(ckpt), torch.device("cpu"))
    assert not model.training
    assert torch.equal(model.state_dict()["img_backbone.conv1.weight"], state["img_backbone.conv1.weight"])
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        tool.build_detector(cfg, str(tmp_path / "missing.pth"), torch.device("cpu"))


def test_benchmark_refuses_a_distiller_config_and_bad_arguments() -> None:
    tool = load_tool("benchmark")
    with pytest.raises(ValueError, match="benchmark_distill"):
        tool.main([str(REPO / "tests" / "kd" / "configs" / "tiny_distill_raydn.py")])
    with pytest.raises(SystemExit):
        tool.parse_args([TINY_CONFIG, "--iters", "0"])
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            tool.main([TINY_CONFIG, "--device", "cuda"])


@pytest.mark.slow
def test_benchmark_adds_an_onnxruntime_column(tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    from projects.mmdet3d_plugin.export.example_frames import synthetic_frame
    from projects.mmdet3d_plugin.export.onnx_export import export_streaming_onnx

    tool = load_tool("benchmark")
    cfg = tool.load_config(TINY_CONFIG)
    path = export_streaming_onnx(build_detector(cfg.model).eval(), synthetic_frame(0, 1, 6, (64, 192)),
                                 tmp_path / "tiny.onnx")
    result = tool.main([TINY_CONFIG, "--iters", "1", "--warmup", "0", "--onnx", str(path),
                        "--cfg-options", f"data.test.ann_file={tmp_path / 'none.pkl'}"])
    assert {"latency_ms_mean", "latency_ms_median", "fps"} <= set(result["onnxruntime"])
    assert "onnxruntime cpu" in capsys.readouterr().out
    with pytest.raises(ValueError, match="resolution"):
        tool.main([TINY_CONFIG, "--iters", "1", "--warmup", "0", "--batch-size", "1", "--onnx", str(path),
                   "--cfg-options", f"data.test.ann_file={tmp_path / 'none.pkl'}",
                   "ida_aug_conf.final_dim=[96,192]"])
