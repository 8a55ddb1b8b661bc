"""IoULoss and GIoULoss against hand computations."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

PRED = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
TARGET = torch.tensor([[1.0, 1.0, 3.0, 3.0]])


def test_giou_value_identity_and_disjoint():
    loss = MODELS.build(dict(type="GIoULoss", loss_weight=2.0))
    giou = 1 / 7 - (9 - 7) / 9
    assert loss(PRED, TARGET).item() == pytest.approx(2.0 * (1 - giou), rel=1e-5)
    assert loss(PRED, PRED.clone()).item() == pytest.approx(0.0, abs=1e-6)
    far = torch.tensor([[10.0, 10.0, 12.0, 12.0]])
    assert loss(PRED, far).item() > 2.0


@pytest.mark.parametrize("mode, expected", [("linear", 1 - 1 / 7), ("square", 1 - 1 / 49), ("log", math.log(7))])
def test_iou_modes(mode, expected):
    loss = MODELS.build(dict(type="IoULoss", mode=mode, eps=1e-16, reduction="sum", loss_weight=1.0))
    assert loss(PRED, TARGET).item() == pytest.approx(expected, rel=1e-5)


def test_box_weights_and_avg_factor():
    loss = MODELS.build(dict(type="GIoULoss"))
    pred = torch.cat([PRED, PRED])
    target = torch.cat([TARGET, PRED])
    weight = torch.tensor([[1.0] * 4, [0.0] * 4])
    giou = 1 / 7 - 2 / 9
    assert loss(pred, target, weight, avg_factor=1).item() == pytest.approx(1 - giou, rel=1e-5)


def test_all_zero_weight_gives_zero_with_gradient():
    pred = PRED.clone().requires_grad_(True)
    out = MODELS.build(dict(type="GIoULoss"))(pred, TARGET, torch.zeros(1, 4), avg_factor=0)
    assert out.item() == 0
    out.backward()
    assert pred.grad is not None


def test_bad_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        MODELS.build(dict(type="IoULoss", mode="cubic"))
