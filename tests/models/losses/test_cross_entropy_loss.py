"""CrossEntropyLoss (softmax and sigmoid) against hand computations."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_softmax_value_weight_and_ignore():
    loss = MODELS.build(dict(type="CrossEntropyLoss"))
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    first = -math.log(math.exp(2) / (math.exp(1) + math.exp(2) + 1))
    out = loss(logits, torch.tensor([1, 0]), weight=torch.tensor([1.0, 0.0]), avg_factor=1)
    assert out.item() == pytest.approx(first, rel=1e-5)
    ignoring = MODELS.build(dict(type="CrossEntropyLoss", ignore_index=0, avg_non_ignore=True))
    assert ignoring(logits, torch.tensor([1, 0])).item() == pytest.approx(first, rel=1e-5)


def test_sigmoid_index_labels_expand_to_one_hot_with_background():
    loss = MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=True, reduction="sum", loss_weight=1.0))
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    expected = _softplus(-2.0) + _softplus(-1.0) + _softplus(0.5) + _softplus(0.0)
    assert loss(logits, torch.tensor([0, 2])).item() == pytest.approx(expected, rel=1e-5)


def test_sigmoid_soft_targets_as_yolox_objectness():
    loss = MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=True, reduction="sum"))
    logits = torch.tensor([[0.0], [1.0]])
    target = torch.tensor([[0.6], [0.0]])
    expected = math.log(2) + _softplus(1.0)
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    assert loss(torch.tensor([[20.0]]), torch.tensor([[1.0]])).item() < 1e-6


def test_sigmoid_class_weight_is_pos_weight():
    loss = MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=True, class_weight=[3.0], reduction="sum"))
    assert loss(torch.tensor([[0.0]]), torch.tensor([[1.0]])).item() == pytest.approx(3 * math.log(2), rel=1e-5)


def test_use_mask_and_bad_reduction_are_rejected():
    with pytest.raises(ValueError, match="use_mask"):
        MODELS.build(dict(type="CrossEntropyLoss", use_mask=True))
    with pytest.raises(ValueError, match="reduction"):
        MODELS.build(dict(type="CrossEntropyLoss", reduction="avg"))
