"""Weighted reduction shared by the detection losses."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.models.losses.weighted_loss import WeightedLoss, expand_weight, weight_reduce_loss


def test_reductions_and_weights():
    loss = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    weight = torch.tensor([1.0, 0.0])
    assert weight_reduce_loss(loss, reduction="sum").item() == 10
    assert weight_reduce_loss(loss, reduction="mean").item() == 2.5
    assert torch.equal(weight_reduce_loss(loss, weight, "none"), torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
    assert weight_reduce_loss(loss, weight, "mean", avg_factor=2).item() == pytest.approx(1.5)


def test_avg_factor_with_sum_is_an_error():
    with pytest.raises(ValueError, match="avg_factor"):
        weight_reduce_loss(torch.ones(2), reduction="sum", avg_factor=1.0, owner="L1Loss")


def test_mean_of_empty_loss_is_zero_with_gradient():
    pred = torch.zeros(0, 4, requires_grad=True)
    out = weight_reduce_loss(pred.abs(), reduction="mean")
    assert out.item() == 0
    out.backward()
    assert pred.grad.shape == (0, 4)


def test_expand_weight_shapes():
    loss = torch.zeros(3, 5)
    assert expand_weight(torch.ones(3), loss, "x").shape == (3, 1)
    assert expand_weight(torch.ones(3, 5), loss, "x").shape == (3, 5)
    with pytest.raises(ValueError, match="weight of shape \\(4,\\)"):
        expand_weight(torch.ones(4), loss, "FocalLoss")


class Squared(WeightedLoss):
    """A toy loss: only ``elementwise_loss``; ``forward`` comes from the base."""

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target) ** 2


def test_forward_weights_reduces_and_scales_the_elementwise_loss():
    loss = Squared(reduction="sum", loss_weight=0.5)
    pred, target = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2)
    assert loss(pred, target).item() == 15
    assert loss(pred, target, weight=torch.tensor([1.0, 0.0])).item() == 2.5
    assert loss(pred, target, avg_factor=3.0, reduction_override="mean").item() == pytest.approx(5.0)
    assert torch.equal(loss(pred, target, reduction_override="none"), 0.5 * pred**2)


def test_a_loss_without_elementwise_loss_names_itself():
    class Unfinished(WeightedLoss):
        pass

    with pytest.raises(NotImplementedError, match="Unfinished must implement elementwise_loss"):
        Unfinished()(torch.zeros(1), torch.zeros(1))
