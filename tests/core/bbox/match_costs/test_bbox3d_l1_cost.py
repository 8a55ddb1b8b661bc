"""BBox3DL1Cost: weighted pairwise L1 distances."""
from __future__ import annotations

import torch

from projects.mmdet3d_plugin.registry import TASK_UTILS


def test_bbox3d_l1_cost():
    pred = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    gt = torch.tensor([[1.0, 1.0], [0.0, 0.0], [3.0, -1.0]])
    cost = TASK_UTILS.build(dict(type="BBox3DL1Cost", weight=0.5))(pred, gt)
    assert torch.allclose(cost, torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.5, 2.5]]))
