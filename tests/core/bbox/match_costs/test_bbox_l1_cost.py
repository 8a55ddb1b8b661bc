"""BBoxL1Cost: the two box formats against hand values; bad format rejected."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.registry import TASK_UTILS


@pytest.mark.parametrize("box_format", ["xyxy", "xywh"])
def test_bbox_l1_cost_formats(box_format):
    pred_cxcywh = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    gt_xyxy = torch.tensor([[0.4, 0.3, 0.6, 0.7], [0.0, 0.0, 0.1, 0.1]])
    cost_fn = TASK_UTILS.build(dict(type="BBoxL1Cost", weight=5.0, box_format=box_format))
    cost = cost_fn(pred_cxcywh, gt_xyxy)
    assert cost.shape == (1, 2)
    assert cost[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    if box_format == "xyxy":  # pred as corners (0.4, 0.3, 0.6, 0.7)
        expected = 0.4 + 0.3 + 0.5 + 0.6
    else:  # gt as centre-size (0.05, 0.05, 0.1, 0.1)
        expected = 0.45 + 0.45 + 0.1 + 0.3
    assert cost[0, 1].item() == pytest.approx(5.0 * expected, rel=1e-5)


def test_bbox_l1_cost_bad_format():
    with pytest.raises(ValueError, match="box_format"):
        TASK_UTILS.build(dict(type="BBoxL1Cost", box_format="cxcy"))
