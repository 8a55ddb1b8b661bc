"""ClassificationCost: negative weighted softmax probability of the GT class."""
from __future__ import annotations

import torch

from projects.mmdet3d_plugin.registry import TASK_UTILS


def test_classification_cost():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    cost_fn = TASK_UTILS.build(dict(type="ClassificationCost", weight=3.0))
    cost = cost_fn(logits, torch.tensor([2, 0]))
    probs = logits.softmax(-1)
    expected = torch.stack([-3.0 * probs[:, 2], -3.0 * probs[:, 0]], dim=1)
    assert cost.shape == (2, 2)
    assert torch.allclose(cost, expected)
    assert torch.allclose(cost[1], torch.full((2,), -1.0))
