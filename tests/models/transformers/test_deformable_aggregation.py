"""Deformable feature aggregation: vectorised op vs a slow reference loop, masking, export."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.models.transformers.deformable_aggregation import (
    DeformableFeatureAggregation,
    project_points,
)
from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import cameras, ring_yaws

PC_RANGE = torch.tensor([-51.2, -51.2, -5.0, 51.2, 51.2, 3.0])
IMAGE_SIZE = (32, 48)
SPATIAL_SHAPES = [(8, 12), (4, 6)]


def _lidar2img(num_cams: int) -> torch.Tensor:
    """(N, 4, 4) pinhole cameras (f = 20 px) at the origin looking outwards at yaw 2πn/N."""
    return cameras(ring_yaws(num_cams), IMAGE_SIZE, focal=20.0)[0]


def _bilinear(value: torch.Tensor, u: float, v: float) -> torch.Tensor:
    """Sample value (C, H, W) at normalised (u, v), align_corners=False, zeros outside."""
    channels, height, width = value.shape
    x, y = u * width - 0.5, v * height - 0.5
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(channels, dtype=value.dtype)
    for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
        if 0 <= yy < height and 0 <= xx < width:
            out += value[:, yy, xx] * (1 - abs(x - xx)) * (1 - abs(y - yy))
    return out


def _reference(module, query, query_pos, feat, ref, lidar2img) -> torch.Tensor:
    """Loop over batch, cameras, queries, levels, points and groups."""
    batch, num_query, channels = query.shape
    num_cams, groups, group_dims = lidar2img.shape[1], module.num_groups, channels // module.num_groups
    pc = PC_RANGE.to(query.dtype)
    levels, pts_per_query = len(SPATIAL_SHAPES), module.num_pts
    weights = torch.zeros(batch, num_cams, levels, groups, num_query, pts_per_query, dtype=query.dtype)
    pts = torch.zeros(batch, num_query, pts_per_query, 3, dtype=query.dtype)
    for b in range(batch):
        for q in range(num_query):
            centre = ref[b, q] * (pc[3:] - pc[:3]) + pc[:3]
            pts[b, q] = centre + module.learnable_fc(query[b, q]).reshape(pts_per_query, 3)
            logits = torch.stack([
                module.weights_fc(query[b, q] + query_pos[b, q]
                                  + module.cam_embed(lidar2img[b, n, :3].reshape(12)))
                for n in range(num_cams)])  # (N, L*P*G), index (l*P + p)*G + g
            logits = logits.reshape(num_cams, levels, pts_per_query, groups)
            for g in range(groups):
                soft = logits[..., g].reshape(-1).softmax(0).reshape(num_cams, levels, pts_per_query)
                weights[b, :, :, g, q, :] = soft
    starts = [0, SPATIAL_SHAPES[0][0] * SPATIAL_SHAPES[0][1]]
    out = torch.zeros(batch, num_query, channels, dtype=query.dtype)
    for b in range(batch):
        for n in range(num_cams):
            for q in range(num_query):
                for p in range(module.num_pts):
                    cam = lidar2img[b, n] @ torch.cat([pts[b, q, p], torch.ones(1, dtype=query.dtype)])
                    if cam[2] <= 1e-5:
                        continue
                    u = float(cam[0] / cam[2]) / IMAGE_SIZE[1]
                    v = float(cam[1] / cam[2]) / IMAGE_SIZE[0]
                    for lvl, (h, w) in enumerate(SPATIAL_SHAPES):
                        tokens = feat[b * num_cams + n, starts[lvl]:starts[lvl] + h * w]
                        sample = _bilinear(tokens.T.reshape(channels, h, w), u, v)
                        for g in range(groups):
                            sl = slice(g * group_dims, (g + 1) * group_dims)
                            out[b, q, sl] += weights[b, n, lvl, g, q, p] * sample[sl]
    return module.output_proj(out) + query


def _inputs(batch=2, num_cams=3, num_query=5, channels=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, num_query, channels, generator=gen, dtype=torch.float64)
    query_pos = torch.randn(batch, num_query, channels, generator=gen, dtype=torch.float64)
    tokens = sum(h * w for h, w in SPATIAL_SHAPES)
    feat = torch.randn(batch * num_cams, tokens, channels, generator=gen, dtype=torch.float64)
    ref = torch.rand(batch, num_query, 3, generator=gen, dtype=torch.float64) * 0.3 + 0.35
    lidar2img = _lidar2img(num_cams).double().unsqueeze(0).repeat(batch, 1, 1, 1)
    return query, query_pos, feat, ref, lidar2img


def _module(channels=16, num_cams=3) -> DeformableFeatureAggregation:
    torch.manual_seed(0)
    module = DeformableFeatureAggregation(
        embed_dims=channels, num_groups=4, num_levels=2, num_cams=num_cams, dropout=0.0,
        num_pts=4, bias=20.0)
    module.init_weights()
    torch.nn.init.normal_(module.weights_fc.weight, std=0.3)
    torch.nn.init.normal_(module.learnable_fc.weight, std=3.0)
    return module.double().eval()


def test_matches_reference_loop():
    module = _module()
    query, query_pos, feat, ref, lidar2img = _inputs()
    pts = module.key_points(query, ref, PC_RANGE.double())
    _, in_front = project_points(pts, lidar2img, IMAGE_SIZE)
    assert 0 < in_front.float().mean() < 1, "inputs must exercise points behind cameras"
    with torch.no_grad():
        fast = module(query, query_pos, feat, ref, SPATIAL_SHAPES, PC_RANGE.double(), lidar2img, IMAGE_SIZE)
        slow = _reference(module, query, query_pos, feat, ref, lidar2img)
    assert (fast - slow).abs().max() < 1e-5


def test_weights_softmax_over_cameras_levels_points():
    module = _module()
    query, query_pos, _, _, lidar2img = _inputs()
    weights = module.point_weights(query, query_pos, lidar2img)
    assert weights.shape == (2, 3, 2, 4, 5, 4)
    total = weights.sum(dim=(1, 2, 5))
    assert torch.allclose(total, torch.ones_like(total))


def test_points_behind_cameras_and_outside_images_read_nothing():
    module = _module()
    query, query_pos, feat, ref, lidar2img = _inputs()
    behind = lidar2img.clone()
    behind[:, :, 2] = torch.tensor([0.0, 0.0, 0.0, -1.0])  # every point at depth -1
    with torch.no_grad():
        out = module(query, query_pos, feat, ref, SPATIAL_SHAPES, PC_RANGE.double(), behind, IMAGE_SIZE)
        far = module(query, query_pos, feat, ref, SPATIAL_SHAPES, PC_RANGE.double(), lidar2img, (1, 1))
        empty = module.output_proj(torch.zeros_like(query)) + query
    assert torch.allclose(out, empty)
    assert torch.allclose(far, empty)


def test_gradients_reach_features_and_offsets():
    module = _module().float().train()
    query, query_pos, feat, ref, lidar2img = (t.float() for t in _inputs())
    feat.requires_grad_(True)
    out = module(query, query_pos, feat, ref, SPATIAL_SHAPES, PC_RANGE, lidar2img, IMAGE_SIZE)
    out.sum().backward()
    assert feat.grad.abs().sum() > 0
    assert module.learnable_fc.weight.grad.abs().sum() > 0
    assert module.cam_embed[0].weight.grad.abs().sum() > 0


def test_published_parameter_shapes_and_registry_names():
    module = MODELS.build(dict(type="DeformableFeatureAggregationCuda", embed_dims=256,
                               num_groups=8, num_levels=4, num_cams=6, dropout=0.1,
                               num_pts=13, bias=2.0))
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert shapes["learnable_fc.weight"] == (39, 256)
    assert shapes["weights_fc.weight"] == (416, 256)
    assert shapes["output_proj.weight"] == (256, 256)
    assert shapes["cam_embed.0.weight"] == (128, 12)
    assert shapes["cam_embed.2.weight"] == (256, 128)
    assert shapes["cam_embed.4.weight"] == (256,)
    with pytest.raises(TypeError):
        MODELS.build(dict(type="DeformableFeatureAggregation", num_point=13))


def test_wrong_camera_count_raises():
    module = _module()
    query, query_pos, feat, ref, lidar2img = _inputs()
    with pytest.raises(ValueError, match="num_cams=3"):
        module(query, query_pos, feat, ref, SPATIAL_SHAPES, PC_RANGE.double(), lidar2img[:, :2], IMAGE_SIZE)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_onnx_export_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    module = _module().float()
    query, query_pos, feat, ref, lidar2img = (t.float() for t in _inputs())
    pc_range = PC_RANGE.clone()

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dfa = module

        def forward(self, query, query_pos, feat, ref, lidar2img):
            return self.dfa(query, query_pos, feat, ref, SPATIAL_SHAPES, pc_range, lidar2img, IMAGE_SIZE)

    path = tmp_path / "dfa.onnx"
    args = (query, query_pos, feat, ref, lidar2img)
    torch.onnx.export(Wrapper(), args, str(path), opset_version=17, dynamo=False,
                      input_names=["query", "query_pos", "feat", "ref", "lidar2img"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {name: t.numpy() for name, t in
                                     zip(["query", "query_pos", "feat", "ref", "lidar2img"], args)})
    with torch.no_grad():
        expected = Wrapper()(*args)
    assert abs(onnx_out - expected.numpy()).max() < 1e-4
