"""FPN: mmdet key names, output shapes for each extra-level mode, top-down semantics."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.models.necks.fpn import FPN
from projects.mmdet3d_plugin.registry import MODELS

IN_CHANNELS = [8, 16, 32, 64]


def _features(batch: int = 2) -> list[torch.Tensor]:
    sizes = [(16, 32), (8, 16), (4, 8), (2, 4)]
    return [torch.randn(batch, c, h, w) for c, (h, w) in zip(IN_CHANNELS, sizes)]


def test_raydn_neck_keys_and_shapes():
    neck = MODELS.build(dict(type="FPN", in_channels=IN_CHANNELS, out_channels=12, start_level=1,
                             add_extra_convs="on_output", relu_before_extra_convs=True, num_outs=4))
    keys = {k for k in neck.state_dict() if k.endswith("weight")}
    assert keys == {f"lateral_convs.{i}.conv.weight" for i in range(3)} | {
        f"fpn_convs.{i}.conv.weight" for i in range(4)}
    outs = neck(_features())
    assert [tuple(o.shape) for o in outs] == [(2, 12, 8, 16), (2, 12, 4, 8), (2, 12, 2, 4), (2, 12, 1, 2)]
    assert neck.out_channels == 12 and neck.num_outs == 4


@pytest.mark.parametrize("mode, first_extra_in", [("on_input", 64), ("on_lateral", 12), ("on_output", 12)])
def test_extra_conv_sources(mode, first_extra_in):
    neck = FPN(IN_CHANNELS, 12, num_outs=6, add_extra_convs=mode)
    assert neck.fpn_convs[4].conv.in_channels == first_extra_in
    outs = neck(_features(1))
    assert [o.shape[-2:] for o in outs][4:] == [torch.Size([1, 2]), torch.Size([1, 1])]


def test_true_means_on_input_and_maxpool_without_convs():
    assert FPN(IN_CHANNELS, 12, num_outs=5, add_extra_convs=True).add_extra_convs == "on_input"
    neck = FPN(IN_CHANNELS, 12, num_outs=5)
    assert len(neck.fpn_convs) == 4
    outs = neck(_features(1))
    torch.testing.assert_close(outs[4], outs[3][:, :, ::2, ::2])


def test_output_is_conv_of_lateral_plus_upsampled_coarser_level():
    neck = FPN([8, 16], 4, num_outs=2).eval()
    neck.init_weights()
    fine, coarse = torch.randn(1, 8, 4, 4), torch.randn(1, 16, 2, 2)
    outs = neck([fine, coarse])
    lateral_coarse = neck.lateral_convs[1](coarse)
    merged = neck.lateral_convs[0](fine) + lateral_coarse.repeat_interleave(2, -1).repeat_interleave(2, -2)
    torch.testing.assert_close(outs[0], neck.fpn_convs[0](merged))
    torch.testing.assert_close(outs[1], neck.fpn_convs[1](lateral_coarse))


def test_end_level_is_inclusive():
    neck = FPN(IN_CHANNELS, 12, num_outs=2, start_level=1, end_level=2)
    assert len(neck.lateral_convs) == 2
    assert [o.shape[-1] for o in neck(_features(1))] == [16, 8]


def test_norm_and_no_norm_on_lateral():
    neck = FPN(IN_CHANNELS, 12, num_outs=4, norm_cfg=dict(type="GN", num_groups=4), no_norm_on_lateral=True)
    assert "lateral_convs.0.gn.weight" not in neck.state_dict()
    assert "fpn_convs.0.gn.weight" in neck.state_dict()


def test_xavier_init_zeroes_biases():
    neck = FPN(IN_CHANNELS, 12, num_outs=4)
    neck.init_weights()
    assert torch.all(neck.lateral_convs[0].conv.bias == 0)
    bound = (6 / (8 + 12)) ** 0.5
    assert neck.lateral_convs[0].conv.weight.abs().max() <= bound


@pytest.mark.parametrize(
    "args, match",
    [(dict(num_outs=2), "num_outs"), (dict(num_outs=4, add_extra_convs="on_top"), "add_extra_convs"),
     (dict(num_outs=4, upsample_cfg=dict(mod="nearest")), "did you mean 'mode'"),
     (dict(num_outs=4, init_cfg=dict(type="Kaiming")), "init_cfg")],
)
def test_bad_arguments_raise(args, match):
    with pytest.raises(ValueError, match=match):
        FPN(IN_CHANNELS, 12, **args)


def test_wrong_number_of_inputs_raises():
    with pytest.raises(ValueError, match="expects 4 feature maps"):
        FPN(IN_CHANNELS, 12, num_outs=4)(_features()[:3])
