"""AssignResult: conventions and the positive / negative index helpers."""
from __future__ import annotations

import torch

from projects.mmdet3d_plugin.core.bbox.assigners.assign_result import AssignResult


def test_pos_neg_indices():
    result = AssignResult(
        num_gts=2, gt_inds=torch.tensor([0, 2, 0, 1]), labels=torch.tensor([-1, 5, -1, 3])
    )
    assert result.pos_inds.tolist() == [1, 3]
    assert result.neg_inds.tolist() == [0, 2]
    assert result.pos_assigned_gt_inds.tolist() == [1, 0]
    assert result.max_overlaps is None


def test_empty():
    result = AssignResult(num_gts=0, gt_inds=torch.zeros(0, dtype=torch.long),
                          labels=torch.zeros(0, dtype=torch.long))
    assert result.pos_inds.shape == (0,) and result.neg_inds.shape == (0,)
