"""SmoothL1Loss against hand computations."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def test_both_branches():
    loss = MODELS.build(dict(type="SmoothL1Loss", beta=1.0, reduction="none"))
    out = loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([0.125, 1.5]))


def test_weight_avg_factor_and_beta():
    loss = MODELS.build(dict(type="SmoothL1Loss", beta=2.0, loss_weight=2.0))
    pred, target = torch.tensor([1.0, 4.0]), torch.zeros(2)
    assert loss(pred, target, torch.tensor([1.0, 0.5]), avg_factor=2).item() == pytest.approx(2.0 * (0.25 + 1.5) / 2)
    assert loss(target, target).item() == 0
    with pytest.raises(ValueError, match="beta"):
        MODELS.build(dict(type="SmoothL1Loss", beta=0))
