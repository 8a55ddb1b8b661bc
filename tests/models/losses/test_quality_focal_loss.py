"""QualityFocalLoss against a hand computation."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _bce(x: float, t: float) -> float:
    p = _sig(x)
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_value_positive_and_background_samples():
    loss = MODELS.build(dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, reduction="none"))
    pred = torch.tensor([[0.5, -1.0], [1.0, 0.0]])
    label, score = torch.tensor([1, 2]), torch.tensor([0.8, 0.0])
    out = loss(pred, (label, score))
    sample0 = _bce(0.5, 0) * _sig(0.5) ** 2 + _bce(-1.0, 0.8) * abs(0.8 - _sig(-1.0)) ** 2
    sample1 = _bce(1.0, 0) * _sig(1.0) ** 2 + _bce(0.0, 0) * _sig(0.0) ** 2
    torch.testing.assert_close(out, torch.tensor([sample0, sample1]))


def test_weight_avg_factor_and_zero_at_perfect_quality():
    loss = MODELS.build(dict(type="QualityFocalLoss", loss_weight=2.0))
    pred = torch.tensor([[-30.0, 0.0]])
    perfect = loss(pred, (torch.tensor([1]), torch.tensor([0.5])))
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)
    pred = torch.tensor([[0.5, -1.0], [1.0, 0.0]])
    target = (torch.tensor([1, 2]), torch.tensor([0.8, 0.0]))
    per_sample = MODELS.build(dict(type="QualityFocalLoss", reduction="none"))(pred, target)
    out = loss(pred, target, weight=torch.tensor([0.0, 1.0]), avg_factor=4.0)
    assert out.item() == pytest.approx(2.0 * per_sample[1].item() / 4.0, rel=1e-5)


def test_gradient_flows_to_positive_entry():
    pred = torch.zeros(1, 3, requires_grad=True)
    MODELS.build(dict(type="QualityFocalLoss"))(pred, (torch.tensor([2]), torch.tensor([0.9]))).backward()
    assert pred.grad[0, 2] < 0 < pred.grad[0, 0]


def test_bad_target_raises():
    loss = MODELS.build(dict(type="QualityFocalLoss"))
    with pytest.raises(ValueError, match="pair"):
        loss(torch.zeros(2, 3), torch.zeros(2))


def test_the_softmax_form_is_refused_naming_the_loss():
    with pytest.raises(ValueError, match="QualityFocalLoss: only use_sigmoid=True"):
        MODELS.build(dict(type="QualityFocalLoss", use_sigmoid=False))
