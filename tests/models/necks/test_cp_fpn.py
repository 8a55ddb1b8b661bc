"""CPFPN: StreamPETR's key names (one fpn conv), shapes and semantics."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.models.necks.cp_fpn import CPFPN
from projects.mmdet3d_plugin.registry import MODELS


def test_streampetr_neck_keys_shapes_and_outputs():
    neck = MODELS.build(dict(type="CPFPN", in_channels=[32, 64], out_channels=16, num_outs=2)).eval()
    assert set(neck.state_dict()) == {
        "lateral_convs.0.conv.weight", "lateral_convs.0.conv.bias",
        "lateral_convs.1.conv.weight", "lateral_convs.1.conv.bias",
        "fpn_convs.0.conv.weight", "fpn_convs.0.conv.bias"}
    c4, c5 = torch.randn(2, 32, 8, 22), torch.randn(2, 64, 4, 11)
    p4, p5 = neck([c4, c5])
    assert p4.shape == (2, 16, 8, 22) and p5.shape == (2, 16, 4, 11)
    lateral5 = neck.lateral_convs[1](c5)
    torch.testing.assert_close(p5, lateral5)
    up = torch.nn.functional.interpolate(lateral5, size=(8, 22), mode="nearest")
    torch.testing.assert_close(p4, neck.fpn_convs[0](neck.lateral_convs[0](c4) + up))


def test_every_parameter_gets_a_gradient():
    neck = CPFPN([32, 64], 16, num_outs=2)
    outs = neck([torch.randn(1, 32, 4, 4), torch.randn(1, 64, 2, 2)])
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in neck.parameters())


def test_no_output_conv_without_level_zero():
    neck = CPFPN([8, 32, 64], 16, num_outs=2, start_level=1)
    assert len(neck.fpn_convs) == 0
    outs = neck([torch.randn(1, 8, 8, 8), torch.randn(1, 32, 4, 4), torch.randn(1, 64, 2, 2)])
    assert [o.shape[-1] for o in outs] == [4, 2]


def test_extra_levels_follow_the_level_zero_conv():
    neck = CPFPN([32, 64], 16, num_outs=4, add_extra_convs="on_output", relu_before_extra_convs=True)
    assert len(neck.fpn_convs) == 3
    outs = neck([torch.randn(1, 32, 8, 8), torch.randn(1, 64, 4, 4)])
    assert [o.shape[-1] for o in outs] == [8, 4, 2, 1]


def test_end_level_is_exclusive():
    neck = CPFPN([16, 32, 64], 16, num_outs=2, end_level=2)
    assert len(neck.lateral_convs) == 2
    with pytest.raises(ValueError, match="end_level"):
        CPFPN([16, 32, 64], 16, num_outs=3, end_level=2)
