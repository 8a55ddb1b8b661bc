"""FocalLoss (sigmoid) against a hand computation."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def _focal(logit: float, positive: bool, gamma: float = 2.0, alpha: float = 0.25) -> float:
    p = 1 / (1 + math.exp(-logit))
    if positive:
        return -alpha * (1 - p) ** gamma * math.log(p)
    return -(1 - alpha) * p**gamma * math.log(1 - p)


def test_value_with_index_targets_and_background():
    loss = MODELS.build(dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0))
    pred = torch.tensor([[0.0, 1.0], [-1.0, 2.0]])
    target = torch.tensor([0, 2])
    expected = _focal(0.0, True) + _focal(1.0, False) + _focal(-1.0, False) + _focal(2.0, False)
    assert loss(pred, target).item() == pytest.approx(2.0 * expected / 4, rel=1e-5)
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert loss(pred, one_hot).item() == pytest.approx(loss(pred, target).item())


def test_sample_weight_and_avg_factor():
    loss = MODELS.build(dict(type="FocalLoss"))
    pred = torch.tensor([[0.0, 1.0], [-1.0, 2.0]])
    out = loss(pred, torch.tensor([0, 2]), weight=torch.tensor([1.0, 0.0]), avg_factor=1.0)
    assert out.item() == pytest.approx(_focal(0.0, True) + _focal(1.0, False), rel=1e-5)


def test_confident_correct_is_near_zero_and_wrong_is_large():
    loss = MODELS.build(dict(type="FocalLoss", reduction="sum"))
    good = loss(torch.tensor([[9.0, -9.0]]), torch.tensor([0]))
    bad = loss(torch.tensor([[-9.0, 9.0]]), torch.tensor([0]))
    assert 0 <= good.item() < 1e-6 and bad.item() > 1


def test_activated_matches_logits():
    logits = torch.tensor([[0.3, -0.7, 1.2]])
    target = torch.tensor([1])
    a = MODELS.build(dict(type="FocalLoss"))(logits, target)
    b = MODELS.build(dict(type="FocalLoss", activated=True))(logits.sigmoid(), target)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_softmax_focal_is_rejected():
    with pytest.raises(ValueError, match="use_sigmoid"):
        MODELS.build(dict(type="FocalLoss", use_sigmoid=False))
