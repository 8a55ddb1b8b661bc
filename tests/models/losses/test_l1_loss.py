"""L1Loss against hand computations."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def test_value_weight_and_avg_factor():
    loss = MODELS.build(dict(type="L1Loss", loss_weight=0.25))
    pred = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    target = torch.tensor([[0.0, 2.0], [2.0, 1.0]])
    assert loss(pred, target).item() == pytest.approx(0.25 * 5 / 4)
    weight = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert loss(pred, target, weight, avg_factor=1).item() == pytest.approx(0.25)
    assert loss(pred, target, reduction_override="sum").item() == pytest.approx(1.25)


def test_zero_at_target_and_empty_input():
    loss = MODELS.build(dict(type="L1Loss"))
    x = torch.randn(3, 10)
    assert loss(x, x.clone()).item() == 0
    assert loss(torch.zeros(0, 10), torch.zeros(0, 10), avg_factor=1.0).item() == 0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="must match"):
        MODELS.build(dict(type="L1Loss"))(torch.zeros(2, 3), torch.zeros(2, 4))
