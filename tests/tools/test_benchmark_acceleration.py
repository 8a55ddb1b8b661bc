"""Precision, torch.compile, CUDA graphs and parity of tools/benchmark.py (nothing is timed)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from harmodistill_tools.acceleration import (CudaGraphHead, CudaGraphModule, accelerate, check_acceleration,
                                             precision_context, predictor)
from harmodistill_tools.benchmarking import config_image_size
from harmodistill_tools.parity import parity_report, record_head_outputs
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.export.example_frames import synthetic_frame
from projects.mmdet3d_plugin.models.detectors.base import build_detector
from projects.mmdet3d_plugin.paths import REPO_ROOT

TINY_CONFIG = str(REPO_ROOT / "tests" / "engine" / "configs" / "tiny_raydn.py")
NO_TEST_DATA = ["--cfg-options", "data.test.ann_file=/nonexistent/infos.pkl"]
CPU = torch.device("cpu")


def tiny_model_and_frames(count: int) -> tuple[nn.Module, list[dict]]:
    cfg = load_config(TINY_CONFIG)
    torch.manual_seed(0)
    model = build_detector(cfg.model).eval()
    return model, [synthetic_frame(i, 1, 6, config_image_size(cfg)) for i in range(count)]


@pytest.mark.parametrize("precision", ["tf32", "fp16"])
def test_cuda_only_precisions_fail_clearly_on_cpu(precision: str) -> None:
    with pytest.raises(ValueError, match=f"--precision {precision} needs CUDA"):
        check_acceleration(precision, None, False, CPU)


def test_cuda_graphs_fail_clearly_on_cpu(load_tool) -> None:
    with pytest.raises(ValueError, match="--cuda-graphs needs a CUDA device"):
        load_tool("benchmark").main([TINY_CONFIG, "--cuda-graphs", *NO_TEST_DATA])
    with pytest.raises(ValueError, match="pick one"):
        check_acceleration("fp32", "reduce-overhead", True, torch.device("cuda"))


def test_compare_rejects_fp16_on_cpu(load_tool) -> None:
    with pytest.raises(ValueError, match="--precision fp16 needs CUDA"):
        load_tool("benchmark_compare").main(["--model", "a", TINY_CONFIG, "--precision", "fp16", *NO_TEST_DATA])


def test_precision_context_sets_and_restores() -> None:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with precision_context("tf32", torch.device("cuda")):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == saved
    with precision_context("bf16", CPU):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")


@pytest.mark.slow
def test_compiled_head_keeps_streaming_memory() -> None:
    """Compiled and eager predictions agree frame by frame over 3 streaming frames, and the
    memory matters (eager outputs of frame 2 differ from a fresh memory's)."""
    model, frames = tiny_model_and_frames(3)
    eager = copy.deepcopy(model)
    expected = record_head_outputs(eager, predictor(eager, "fp32", CPU), frames)
    fresh = record_head_outputs(eager, predictor(eager, "fp32", CPU), [frames[2]])
    assert not torch.allclose(expected[2]["bbox"], fresh[0]["bbox"], atol=1e-3)
    plan = accelerate(model, "default", "aot_eager")
    assert set(plan.values()) == {"compiled (aot_eager, default)"}
    got = record_head_outputs(model, predictor(model, "fp32", CPU), frames)
    for want, have in zip(expected, got):
        torch.testing.assert_close(have["cls"], want["cls"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(have["bbox"], want["bbox"], atol=1e-3, rtol=1e-4)
    report = parity_report(expected, got, top_k=20)
    assert report["worst"]["label_agreement"] == 1.0 and report["worst"]["topk_overlap"] == 1.0


def test_explicit_memory_state_frames_match_the_head() -> None:
    """The head graph's state handling (memory in, frame, memory out), run without capture:
    the same outputs and memory as the plain head over 3 streaming frames."""
    model, frames = tiny_model_and_frames(3)
    eager = copy.deepcopy(model)
    expected = record_head_outputs(eager, predictor(eager, "fp32", CPU), frames)
    model.pts_bbox_head = CudaGraphHead(model.pts_bbox_head, capture=False)
    got = record_head_outputs(model, predictor(model, "fp32", CPU), frames)
    for want, have in zip(expected, got):
        torch.testing.assert_close(have["cls"], want["cls"])
        torch.testing.assert_close(have["bbox"], want["bbox"])
    for name, tensor in eager.pts_bbox_head.memory.state().items():
        torch.testing.assert_close(model.pts_bbox_head.memory.state()[name], tensor)
    with pytest.raises(ValueError, match="--cuda-graph-head goes with --cuda-graphs"):
        check_acceleration("fp32", None, False, torch.device("cuda"), cuda_graph_head=True)


@pytest.mark.slow
def test_benchmark_bf16_parity_report(load_tool, capsys) -> None:
    result = load_tool("benchmark").main([TINY_CONFIG, "--precision", "bf16", "--parity", "--parity-top-k", "10",
                                          "--iters", "1", "--warmup", "1", *NO_TEST_DATA])
    printed = capsys.readouterr().out
    parity = result["parity"]
    assert result["precision"] == "bf16" and "parity of bf16" in printed and len(parity["frames"]) == 2
    first = parity["first_frame"]
    assert 0 < first["score_max"] < 0.05 and first["centre_max_m"] < 1.0 and first["size_max_m"] < 0.5
    assert 0 <= parity["worst"]["label_agreement"] <= 1 and parity["top_k"] == 10


def test_parity_rejects_mismatched_runs() -> None:
    frame = dict(cls=torch.zeros(1, 4, 3), bbox=torch.zeros(1, 4, 10))
    with pytest.raises(ValueError, match="same positive number of frames"):
        parity_report([frame], [], top_k=2)
    with pytest.raises(ValueError, match="differ in shape"):
        parity_report([frame], [dict(cls=torch.zeros(1, 5, 3), bbox=torch.zeros(1, 5, 10))], top_k=2)


@pytest.mark.gpu
def test_cuda_graph_module_replays_and_checks_shapes() -> None:
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).cuda().eval()
    graphed = CudaGraphModule(module)
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(2, 3, 16, 16, device="cuda")
            torch.testing.assert_close(graphed(x), module(x))
        with pytest.raises(ValueError, match="was captured for inputs"):
            graphed(torch.randn(1, 3, 16, 16, device="cuda"))


@pytest.mark.gpu
def test_benchmark_cuda_graphs_match_eager(load_tool) -> None:
    result = load_tool("benchmark").main([TINY_CONFIG, "--device", "cuda", "--cuda-graphs", "--parity",
                                          "--iters", "2", "--warmup", "1", *NO_TEST_DATA])
    assert result["acceleration"]["img_backbone"] == "cuda graph"
    assert result["parity"]["worst"]["centre_max_m"] < 1e-2 and result["parity"]["worst"]["topk_overlap"] > 0.9


@pytest.mark.gpu
def test_benchmark_cuda_graph_head_matches_eager(load_tool) -> None:
    result = load_tool("benchmark").main([TINY_CONFIG, "--device", "cuda", "--cuda-graphs", "--cuda-graph-head",
                                          "--parity", "--iters", "3", "--warmup", "1", *NO_TEST_DATA])
    assert result["acceleration"]["pts_bbox_head"].startswith("cuda graph")
    assert result["parity"]["worst"]["centre_max_m"] < 1e-2 and result["parity"]["worst"]["topk_overlap"] > 0.9
