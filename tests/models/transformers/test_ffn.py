"""FFN and builders: mmcv parameter names, residual, values, config validation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from projects.mmdet3d_plugin.models.transformers.ffn import FFN, build_dropout, build_norm
from projects.mmdet3d_plugin.registry import MODELS


def test_ffn_keys_match_mmcv():
    ffn = MODELS.build(dict(type="FFN", embed_dims=8, feedforward_channels=32))
    assert list(ffn.state_dict()) == [
        "layers.0.0.weight", "layers.0.0.bias", "layers.1.weight", "layers.1.bias"
    ]
    assert isinstance(ffn.layers[0][1], nn.ReLU) and isinstance(ffn.layers[2], nn.Dropout)
    three = FFN(embed_dims=8, feedforward_channels=16, num_fcs=3)
    assert "layers.1.0.weight" in three.state_dict() and "layers.2.weight" in three.state_dict()


def test_ffn_values_and_residual():
    torch.manual_seed(0)
    ffn = FFN(embed_dims=8, feedforward_channels=16).eval()
    x, identity = torch.randn(4, 3, 8), torch.randn(4, 3, 8)
    hidden = F.linear(F.relu(ffn.layers[0][0](x)), ffn.layers[1].weight, ffn.layers[1].bias)
    assert torch.allclose(ffn(x), x + hidden, atol=1e-6)
    assert torch.allclose(ffn(x, identity), identity + hidden, atol=1e-6)
    no_identity = FFN(embed_dims=8, feedforward_channels=16, add_identity=False)
    no_identity.load_state_dict(ffn.state_dict())
    assert torch.allclose(no_identity(x), hidden, atol=1e-6)


def test_ffn_gelu_and_typos():
    ffn = FFN(embed_dims=4, feedforward_channels=8, act_cfg=dict(type="GELU"))
    assert isinstance(ffn.layers[0][1], nn.GELU)
    with pytest.raises(TypeError):
        MODELS.build(dict(type="FFN", embed_dims=4, feedforward_chanels=8))
    with pytest.raises(ValueError, match="activation type"):
        FFN(act_cfg=dict(type="Relu"))


def test_build_norm():
    ln = build_norm(dict(type="LN"), 6)
    assert isinstance(ln, nn.LayerNorm) and ln.normalized_shape == (6,)
    frozen = build_norm(dict(type="LN", requires_grad=False), 6)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert isinstance(build_norm(dict(type="GN", num_groups=2), 6), nn.GroupNorm)
    with pytest.raises(ValueError, match="unknown keys"):
        build_norm(dict(type="LN", epsilon=1e-6), 6)
    with pytest.raises(ValueError, match="norm type"):
        build_norm(dict(type="RMS"), 6)


def test_build_dropout():
    drop = build_dropout(dict(type="Dropout", drop_prob=0.3))
    assert isinstance(drop, nn.Dropout) and drop.p == 0.3
    assert isinstance(build_dropout(None), nn.Identity)
    with pytest.raises(ValueError, match="dropout type"):
        build_dropout(dict(type="DropPath", drop_prob=0.1))
