"""ONNX export of tiny students: parity with PyTorch over a stream, graph hygiene, timing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.export.onnx_export import (
    check_parity, export_streaming_onnx, onnx_input_names, torch_stream)
from projects.mmdet3d_plugin.export.ort_runner import OrtStreamingSession, time_onnx_model
from projects.mmdet3d_plugin.export.streaming_wrapper import (
    FRAME_INPUTS, MEMORY_INPUTS, StreamingExportWrapper, decode_outputs, frame_inputs,
    initial_memory)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def raydn_onnx(tiny_raydn, stream, tmp_path_factory) -> Path:
    return export_streaming_onnx(tiny_raydn, stream[0], tmp_path_factory.mktemp("onnx") / "raydn.onnx")


@pytest.fixture(scope="module")
def petr_onnx(tiny_streampetr, stream, tmp_path_factory) -> Path:
    return export_streaming_onnx(tiny_streampetr, stream[0], tmp_path_factory.mktemp("onnx") / "petr.onnx")


def _assert_parity(reports: list[dict[str, float]]) -> None:
    for frame, report in enumerate(reports):
        assert report["scores"] < TOLERANCE and report["boxes"] < TOLERANCE, (frame, report)
        # The memory lives in the global frame (hundreds of metres, float32) and in float64 s.
        assert report["new_memory_embedding"] < TOLERANCE, (frame, report)
        assert report["new_memory_reference_point"] < 1e-2, (frame, report)
        assert report["new_memory_timestamp"] < 1e-6, (frame, report)


def test_raydn_onnxruntime_matches_pytorch_over_a_stream(tiny_raydn, raydn_onnx, stream):
    _assert_parity(check_parity(tiny_raydn, raydn_onnx, stream))


def test_streampetr_onnxruntime_matches_pytorch_over_a_stream(tiny_streampetr, petr_onnx, stream):
    _assert_parity(check_parity(tiny_streampetr, petr_onnx, stream))
    # Petr3D reads no extrinsics, so the graph does not take them.
    assert "extrinsics" not in onnx_input_names(petr_onnx)


def test_batch_dimension_is_dynamic(tiny_raydn, raydn_onnx, stream_b2):
    """Traced with batch 1, run with batch 2: same outputs as PyTorch."""
    _assert_parity(check_parity(tiny_raydn, raydn_onnx, stream_b2))


def test_graph_uses_standard_operators_only(raydn_onnx, petr_onnx):
    for path in (raydn_onnx, petr_onnx):
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        assert {entry.domain for entry in model.opset_import} <= {"", "ai.onnx"}
        assert min(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")) >= 17
        assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
        assert list(onnx_input_names(path))[-5:] == list(MEMORY_INPUTS)


def test_wrapper_decodes_like_predict(tiny_raydn, stream):
    """The wrapper runs the detector's own code: decoded outputs equal predict() frame by frame."""
    tiny_raydn.reset_memory()
    tiny_raydn._last_mode = None
    expected = []
    with torch.no_grad():
        for frame in stream:
            expected.append(tiny_raydn(frame, mode="predict"))
    for got, want in zip(torch_stream(tiny_raydn, stream), expected):
        decoded = decode_outputs(got[0], got[1], tiny_raydn.pts_bbox_head.bbox_coder)
        for d, w in zip(decoded, want):
            torch.testing.assert_close(d["scores_3d"], w["scores_3d"])
            torch.testing.assert_close(d["boxes_3d"], w["boxes_3d"])
            assert torch.equal(d["labels_3d"], w["labels_3d"])


def test_new_scene_ignores_the_incoming_memory(tiny_raydn, stream):
    """prev_exists=False clears a slot: garbage memory gives the outputs of an empty one."""
    wrapper = StreamingExportWrapper(tiny_raydn)
    frame = frame_inputs(stream[0])
    empty = initial_memory(wrapper.head, 1)
    garbage = {k: torch.randn_like(v) * 100 for k, v in empty.items()}
    with torch.no_grad():
        a = wrapper(*(frame[k] for k in FRAME_INPUTS), *(empty[k] for k in MEMORY_INPUTS))
        b = wrapper(*(frame[k] for k in FRAME_INPUTS), *(garbage[k] for k in MEMORY_INPUTS))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert wrapper.head.memory.is_empty  # the wrapper leaves no state behind


def test_session_carries_memory_and_timing_reports_latency(raydn_onnx, stream):
    frame = {k: v.numpy() for k, v in frame_inputs(stream[1]).items()}
    session = OrtStreamingSession(raydn_onnx)
    first = session.step({k: v.numpy() for k, v in frame_inputs(stream[0]).items()})
    assert np.array_equal(session.memory["memory_embedding"], first["new_memory_embedding"])
    timing = time_onnx_model(raydn_onnx, frame, warmup=1, iters=3, num_threads=1)
    assert 0 < timing["latency_ms_min"] <= timing["latency_ms_median"]
    assert timing["fps"] == pytest.approx(1e3 / timing["latency_ms_median"])
