"""MLN and SELayer_Linear: upstream parameter names, identity init, modulation values."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from projects.mmdet3d_plugin.models.temporal.mln import MLN, SELayer_Linear
from projects.mmdet3d_plugin.registry import MODELS


def test_mln_keys():
    mln = MODELS.build(dict(type="MLN", c_dim=12, f_dim=16))
    assert set(mln.state_dict()) == {
        "reduce.0.weight", "reduce.0.bias", "gamma.weight", "gamma.bias", "beta.weight", "beta.bias"
    }
    assert mln.state_dict()["reduce.0.weight"].shape == (16, 12)


def test_mln_at_init_is_plain_layer_norm():
    torch.manual_seed(0)
    mln = MLN(c_dim=6, f_dim=8)
    x, c = torch.randn(2, 5, 8) * 3 + 1, torch.randn(2, 5, 6)
    assert torch.allclose(mln(x, c), F.layer_norm(x, (8,)), atol=1e-6)


def test_mln_modulation_values():
    torch.manual_seed(0)
    mln = MLN(c_dim=3, f_dim=4)
    for layer in (mln.gamma, mln.beta):
        nn.init.normal_(layer.weight)
        nn.init.normal_(layer.bias)
    x, c = torch.randn(5, 4), torch.randn(5, 3)
    cond = F.relu(mln.reduce[0](c))
    expected = mln.gamma(cond) * F.layer_norm(x, (4,)) + mln.beta(cond)
    assert torch.allclose(mln(x, c), expected, atol=1e-6)


def test_mln_without_ln():
    mln = MLN(c_dim=3, f_dim=4, use_ln=False)
    x = torch.randn(2, 4)
    assert torch.allclose(mln(x, torch.randn(2, 3)), x)


def test_se_layer_linear():
    torch.manual_seed(0)
    se = MODELS.build(dict(type="SELayer_Linear", channels=8))
    assert {k.split(".")[0] for k in se.state_dict()} == {"conv_reduce", "conv_expand"}
    x, x_se = torch.randn(3, 8), torch.randn(3, 8)
    gate = torch.sigmoid(se.conv_expand(F.relu(se.conv_reduce(x_se))))
    assert torch.allclose(se(x, x_se), x * gate, atol=1e-6)
    assert isinstance(SELayer_Linear(4, act_layer=nn.GELU).act1, nn.GELU)


def test_beta_bias_std_starts_a_shared_shift_and_is_validated():
    torch.manual_seed(0)
    plain, shifted = MLN(6, f_dim=32), MLN(6, f_dim=32, beta_bias_std=0.1)
    assert torch.count_nonzero(plain.beta.bias) == 0
    assert 0.05 < float(shifted.beta.bias.detach().std()) < 0.2
    x, c = torch.zeros(3, 32), torch.randn(3, 6)
    torch.testing.assert_close(shifted(x, c), shifted.beta.bias.detach().expand(3, -1))
    assert set(plain.state_dict()) == set(shifted.state_dict())
    with pytest.raises(ValueError, match="beta_bias_std"):
        MLN(6, beta_bias_std=-1.0)
