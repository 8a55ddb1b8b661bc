"""ConvModule: mmcv child names, bias rule, norm/activation builders."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.models.necks.conv_module import (
    ConvModule,
    build_activation_layer,
    build_norm_layer,
)
from projects.mmdet3d_plugin.registry import MODELS


def test_bn_block_names_and_no_bias():
    block = ConvModule(4, 8, 3, padding=1, norm_cfg=dict(type="BN", momentum=0.03, eps=1e-3),
                       act_cfg=dict(type="Swish"))
    assert set(block.state_dict()) == {
        "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    assert block.bn.momentum == 0.03 and block.bn.eps == 1e-3
    block.eval()
    x = torch.randn(2, 4, 5, 6)
    expected = nn.functional.silu(block.bn(block.conv(x)))
    torch.testing.assert_close(block(x), expected)


def test_gn_relu_block_and_plain_conv():
    block = MODELS.build(dict(type="ConvModule", in_channels=4, out_channels=8, kernel_size=1,
                              norm_cfg=dict(type="GN", num_groups=2), act_cfg=dict(type="ReLU")))
    assert set(block.state_dict()) == {"conv.weight", "gn.weight", "gn.bias"}
    assert torch.all(block(torch.randn(1, 4, 3, 3)) >= 0)
    plain = ConvModule(4, 8, 1)
    assert set(plain.state_dict()) == {"conv.weight", "conv.bias"} and plain.activate is None


def test_requires_grad_false_freezes_norm():
    _, norm = build_norm_layer(dict(type="SyncBN", requires_grad=False), 4)
    assert isinstance(norm, nn.BatchNorm2d) and not norm.weight.requires_grad


@pytest.mark.parametrize(
    "call, match",
    [(lambda: build_norm_layer(dict(type="BN3"), 4), "did you mean 'BN'"),
     (lambda: build_norm_layer(dict(type="GN"), 4), "num_groups"),
     (lambda: build_norm_layer(dict(type="BN", momentun=0.1), 4), "did you mean 'momentum'"),
     (lambda: build_activation_layer(dict(type="Relu")), "did you mean 'ReLU'"),
     (lambda: ConvModule(4, 4, 3, conv_cfg=dict(type="DCNv2")), "conv_cfg")],
)
def test_bad_configs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
