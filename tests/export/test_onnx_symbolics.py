"""The 4x4 inverse written with standard ONNX operators."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.export.onnx_symbolics import inverse_4x4, standard_op_symbolics

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _camera_matrices() -> torch.Tensor:
    """(2, 3, 4, 4) lidar2img-like matrices (focal ~500 px, translations of metres)."""
    gen = torch.Generator().manual_seed(0)
    rotation = torch.linalg.qr(torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64))[0]
    extrinsics = torch.eye(4, dtype=torch.float64).repeat(2, 3, 1, 1)
    extrinsics[..., :3, :3] = rotation
    extrinsics[..., :3, 3] = torch.randn(2, 3, 3, generator=gen, dtype=torch.float64)
    intrinsics = torch.eye(4, dtype=torch.float64)
    intrinsics[:3, :3] = torch.tensor([[500.0, 0, 352], [0, 500.0, 128], [0, 0, 1]])
    return intrinsics @ extrinsics


def test_inverse_4x4_matches_linalg_inv():
    matrices = _camera_matrices()
    torch.testing.assert_close(inverse_4x4(matrices), torch.linalg.inv(matrices))


class _Invert(torch.nn.Module):
    def forward(self, matrix: torch.Tensor) -> torch.Tensor:
        return torch.linalg.inv(matrix)


def test_linalg_inv_exports_as_standard_ops(tmp_path):
    matrices = _camera_matrices().float()
    path = tmp_path / "inv.onnx"
    with standard_op_symbolics(17):
        torch.onnx.export(_Invert(), (matrices,), str(path), opset_version=17, dynamo=False,
                          input_names=["m"], output_names=["inv"], dynamic_axes={"m": {0: "b"}})
    graph = onnx.load(str(path)).graph
    assert all(node.domain == "" for node in graph.node)
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"m": matrices[:1].numpy()})
    torch.testing.assert_close(torch.from_numpy(got), torch.linalg.inv(matrices[:1]), rtol=1e-4, atol=1e-5)


def test_registration_is_removed_after_the_block(tmp_path):
    with standard_op_symbolics(17):
        pass
    # torch reports the op as unsupported (or, after an unregistration, as having no opset).
    with pytest.raises((torch.onnx.errors.UnsupportedOperatorError, ValueError)):
        torch.onnx.export(_Invert(), (torch.eye(4)[None],), str(tmp_path / "x.onnx"),
                          opset_version=17, dynamo=False)
