"""GaussianFocalLoss against a hand computation."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def test_value_on_a_tiny_heatmap():
    loss = MODELS.build(dict(type="GaussianFocalLoss", reduction="mean", loss_weight=1.0))
    pred = torch.tensor([[[0.9], [0.2], [0.5]]])
    target = torch.tensor([[[1.0], [0.5], [0.0]]])
    expected = (-math.log(0.9) * 0.1**2 - math.log(0.8) * 0.2**2 * 0.5**4 - math.log(0.5) * 0.5**2) / 3
    assert loss(pred, target).item() == pytest.approx(expected, rel=1e-5)


def test_avg_factor_and_perfect_prediction():
    loss = MODELS.build(dict(type="GaussianFocalLoss", loss_weight=2.0))
    target = torch.tensor([[1.0, 0.0, 0.3]])
    pred = torch.tensor([[1.0, 0.0, 0.0]])
    assert loss(pred, target, avg_factor=1).item() == pytest.approx(0.0, abs=1e-5)
    worse = loss(torch.tensor([[0.5, 0.5, 0.5]]), target, avg_factor=1)
    assert worse.item() > 0
