"""HungarianAssigner2D (FocalHead): obvious matches on a padded image, zero GTs, meta checks."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_ops import bbox_xyxy_to_cxcywh
from projects.mmdet3d_plugin.registry import TASK_UTILS

PAD_H, PAD_W = 64, 128
GT_BOXES = torch.tensor([[10.0, 8.0, 30.0, 40.0], [80.0, 20.0, 120.0, 60.0]])
GT_CENTERS = torch.tensor([[20.0, 25.0], [100.0, 40.0]])
GT_LABELS = torch.tensor([3, 1])
SCALE = torch.tensor([PAD_W, PAD_H, PAD_W, PAD_H], dtype=torch.float32)


def _assigner():
    return TASK_UTILS.build(
        dict(
            type="HungarianAssigner2D",
            cls_cost=dict(type="FocalLossCost", weight=2.0),
            reg_cost=dict(type="BBoxL1Cost", weight=5.0, box_format="xywh"),
            iou_cost=dict(type="IoUCost", iou_mode="giou", weight=2.0),
            centers2d_cost=dict(type="BBox3DL1Cost", weight=10.0),
        )
    )


def _predictions():
    """3 tokens: token 1 predicts GT 0, token 2 predicts GT 1, token 0 a far-off box."""
    boxes = torch.tensor([[0.9, 0.9, 0.05, 0.05], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    boxes[1] = bbox_xyxy_to_cxcywh(GT_BOXES[0] / SCALE) + 0.01
    boxes[2] = bbox_xyxy_to_cxcywh(GT_BOXES[1] / SCALE) - 0.01
    centers = torch.stack([torch.tensor([0.9, 0.9]), GT_CENTERS[0] / SCALE[:2],
                           GT_CENTERS[1] / SCALE[:2]])
    logits = torch.full((3, 10), -3.0)
    logits[1, 3] = 2.0
    logits[2, 1] = 2.0
    return boxes, logits, centers


@pytest.mark.parametrize("pad_shape", [(PAD_H, PAD_W), (PAD_H, PAD_W, 3)])
def test_pairs_obvious_matches(pad_shape):
    boxes, logits, centers = _predictions()
    result = _assigner().assign(boxes, logits, centers, GT_BOXES, GT_LABELS, GT_CENTERS,
                                dict(pad_shape=pad_shape))
    assert result.gt_inds.tolist() == [0, 1, 2]
    assert result.labels.tolist() == [-1, 3, 1]


def test_zero_gts_all_background():
    boxes, logits, centers = _predictions()
    result = _assigner().assign(boxes, logits, centers, torch.zeros(0, 4),
                                torch.zeros(0, dtype=torch.long), torch.zeros(0, 2),
                                dict(pad_shape=(PAD_H, PAD_W)))
    assert result.gt_inds.tolist() == [0, 0, 0]
    assert result.labels.tolist() == [-1, -1, -1]


def test_missing_pad_shape_raises():
    boxes, logits, centers = _predictions()
    with pytest.raises(KeyError, match="pad_shape"):
        _assigner().assign(boxes, logits, centers, GT_BOXES, GT_LABELS, GT_CENTERS,
                           dict(img_shape=(PAD_H, PAD_W)))
