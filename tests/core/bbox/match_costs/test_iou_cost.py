"""IoUCost: negative weighted (G)IoU."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_ops import bbox_overlaps
from projects.mmdet3d_plugin.registry import TASK_UTILS


def test_iou_cost_is_negative_weighted_giou():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 4.0, 5.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    cost = TASK_UTILS.build(dict(type="IoUCost", iou_mode="giou", weight=2.0))(a, b)
    assert torch.allclose(cost, -2.0 * bbox_overlaps(a, b, mode="giou"))
    assert cost[0, 0].item() == pytest.approx(-2.0 * (1 / 7 - 2 / 9))


def test_iou_mode_iou_and_bad_mode():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    cost = TASK_UTILS.build(dict(type="IoUCost", iou_mode="iou"))(a, a)
    assert cost.item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="iou_mode"):
        TASK_UTILS.build(dict(type="IoUCost", iou_mode="diou"))
