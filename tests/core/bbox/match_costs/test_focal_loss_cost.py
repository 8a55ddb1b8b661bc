"""FocalLossCost: value against the hand-computed focal terms, sign, config typos."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import TASK_UTILS


def test_focal_loss_cost_hand_value():
    cost_fn = TASK_UTILS.build(dict(type="FocalLossCost", weight=2.0))
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, -3.0, 0.5]])
    cost = cost_fn(logits, torch.tensor([1, 1, 0]))
    assert cost.shape == (2, 3)
    p = 1 / (1 + math.exp(-2.0))
    pos = -math.log(p + 1e-12) * 0.25 * (1 - p) ** 2
    neg = -math.log(1 - p + 1e-12) * 0.75 * p**2
    assert cost[0, 0].item() == pytest.approx(2.0 * (pos - neg), rel=1e-5)
    assert torch.equal(cost[:, 0], cost[:, 1])


def test_focal_cost_prefers_confident_class():
    cost = TASK_UTILS.build(dict(type="FocalLossCost"))(torch.tensor([[4.0, -4.0]]),
                                                         torch.tensor([0, 1]))
    assert cost[0, 0] < 0 < cost[0, 1]


def test_constructor_typo_raises():
    with pytest.raises(TypeError):
        TASK_UTILS.build(dict(type="FocalLossCost", weigth=1.0))
