"""HungarianAssigner3D: obvious matches, zero GTs, velocity option, NaN safety, config build."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.util import normalize_bbox
from projects.mmdet3d_plugin.registry import TASK_UTILS

PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
GT_BOXES = torch.tensor(
    [
        [10.0, 5.0, 0.0, 4.0, 2.0, 1.5, 0.2, 1.0, 0.0],
        [-20.0, 3.0, -1.0, 0.8, 0.6, 1.7, -1.0, 0.0, 0.5],
    ]
)
GT_LABELS = torch.tensor([0, 8])


def _assigner():
    return TASK_UTILS.build(
        dict(
            type="HungarianAssigner3D",
            cls_cost=dict(type="FocalLossCost", weight=2.0),
            reg_cost=dict(type="BBox3DL1Cost", weight=0.25),
            iou_cost=dict(type="IoUCost", weight=0.0),
            pc_range=PC_RANGE,
        )
    )


def _predictions():
    """4 queries: query 2 sits on GT 0, query 0 on GT 1, queries 1 and 3 far away."""
    codes = torch.zeros(4, 10)
    codes[:, :3] = torch.tensor([[40.0, 40.0, 0.0]]).repeat(4, 1)
    gt_codes = normalize_bbox(GT_BOXES)
    codes[2] = gt_codes[0] + 0.05
    codes[0] = gt_codes[1] - 0.05
    logits = torch.full((4, 10), -4.0)
    logits[2, 0] = 3.0
    logits[0, 8] = 3.0
    return codes, logits


def test_pairs_obvious_matches():
    codes, logits = _predictions()
    result = _assigner().assign(codes, logits, GT_BOXES, GT_LABELS)
    assert result.num_gts == 2
    assert result.gt_inds.tolist() == [2, 0, 1, 0]
    assert result.labels.tolist() == [8, -1, 0, -1]
    assert result.pos_assigned_gt_inds.tolist() == [1, 0]


def test_zero_gts_all_background():
    codes, logits = _predictions()
    result = _assigner().assign(codes, logits, torch.zeros(0, 9), torch.zeros(0, dtype=torch.long))
    assert result.num_gts == 0
    assert result.gt_inds.tolist() == [0, 0, 0, 0]
    assert result.labels.tolist() == [-1, -1, -1, -1]


def test_velocity_only_counts_with_velo():
    gt_codes = normalize_bbox(GT_BOXES[:1])
    codes = gt_codes.repeat(2, 1)
    codes[0, 8:] = torch.tensor([-30.0, 30.0])  # query 0: same box, wrong velocity
    codes[1, :2] += 0.1  # query 1: slightly off centre, right velocity
    logits = torch.zeros(2, 10)
    assigner = _assigner()
    assert assigner.assign(codes, logits, GT_BOXES[:1], GT_LABELS[:1]).gt_inds.tolist() == [1, 0]
    with_velo = assigner.assign(codes, logits, GT_BOXES[:1], GT_LABELS[:1], with_velo=True)
    assert with_velo.gt_inds.tolist() == [0, 1]


def test_code_weights_scale_the_cost():
    gt_codes = normalize_bbox(GT_BOXES[:1])
    codes = gt_codes.repeat(2, 1)
    codes[0, 0] += 1.0  # x off by 1
    codes[1, 2] += 0.6  # z off by 0.6
    logits = torch.zeros(2, 10)
    assigner = _assigner()
    assert assigner.assign(codes, logits, GT_BOXES[:1], GT_LABELS[:1]).gt_inds.tolist() == [0, 1]
    weights = torch.tensor([0.1, 0.1, 1.0, 1, 1, 1, 1, 1, 1, 1])
    weighted = assigner.assign(codes, logits, GT_BOXES[:1], GT_LABELS[:1], code_weights=weights)
    assert weighted.gt_inds.tolist() == [1, 0]


def test_nan_predictions_and_ignore_rejected():
    codes, logits = _predictions()
    codes[1] = float("nan")
    result = _assigner().assign(codes, logits, GT_BOXES, GT_LABELS)
    assert result.gt_inds.tolist() == [2, 0, 1, 0]
    with pytest.raises(ValueError, match="gt_bboxes_ignore"):
        _assigner().assign(codes, logits, GT_BOXES, GT_LABELS, gt_bboxes_ignore=torch.zeros(0, 9))
