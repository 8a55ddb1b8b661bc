"""Box geometry: corner order, format conversion, IoU / IoF / GIoU against hand values."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_ops import (
    bbox_cxcywh_to_xyxy,
    bbox_overlaps,
    bbox_xyxy_to_cxcywh,
    box3d_corners,
)


def test_corners_axis_aligned_order():
    box = torch.tensor([10.0, 20.0, 1.0, 4.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    corners = box3d_corners(box)
    expected = torch.tensor(
        [
            [-2, -1, -1], [-2, -1, 1], [-2, 1, 1], [-2, 1, -1],
            [2, -1, -1], [2, -1, 1], [2, 1, 1], [2, 1, -1],
        ],
        dtype=torch.float32,
    ) + torch.tensor([10.0, 20.0, 1.0])
    assert corners.shape == (8, 3)
    assert torch.allclose(corners, expected)


def test_corners_rotated_quarter_turn():
    box = torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0, 2.0, math.pi / 2, 1.0, 1.0]])
    corners = box3d_corners(box)
    assert corners.shape == (1, 8, 3)
    # front-right-bottom corner: local (2, -1, -1) rotated by +90 deg -> (1, 2, -1)
    assert torch.allclose(corners[0, 4], torch.tensor([1.0, 2.0, -1.0]), atol=1e-6)
    # the centre is the mean of the corners
    assert torch.allclose(corners[0].mean(0), torch.zeros(3), atol=1e-6)


def test_box_format_round_trip():
    xyxy = torch.tensor([[0.0, 1.0, 4.0, 3.0]])
    cxcywh = bbox_xyxy_to_cxcywh(xyxy)
    assert torch.equal(cxcywh, torch.tensor([[2.0, 2.0, 4.0, 2.0]]))
    assert torch.equal(bbox_cxcywh_to_xyxy(cxcywh), xyxy)


BOX_A = [0.0, 0.0, 2.0, 2.0]
BOX_B = [1.0, 1.0, 3.0, 3.0]
BOX_C = [3.0, 0.0, 4.0, 1.0]


def test_iou_and_giou_hand_values():
    a = torch.tensor([BOX_A])
    b = torch.tensor([BOX_B, BOX_C, BOX_A])
    iou = bbox_overlaps(a, b)
    giou = bbox_overlaps(a, b, mode="giou")
    assert iou.shape == (1, 3)
    assert iou[0].tolist() == pytest.approx([1 / 7, 0.0, 1.0])
    # A vs B: enclosing 3x3 = 9, union 7; A vs C: enclosing 4x2 = 8, union 5
    assert giou[0].tolist() == pytest.approx([1 / 7 - 2 / 9, -3 / 8, 1.0])


def test_iof_and_aligned():
    a = torch.tensor([BOX_A, BOX_B])
    b = torch.tensor([BOX_B, BOX_C])
    iof = bbox_overlaps(a, b, mode="iof")
    assert iof[0, 0].item() == pytest.approx(1 / 4)
    aligned = bbox_overlaps(a, b, mode="giou", is_aligned=True)
    full = bbox_overlaps(a, b, mode="giou")
    assert torch.allclose(aligned, full.diagonal())


def test_overlaps_empty_and_bad_mode():
    assert bbox_overlaps(torch.zeros(0, 4), torch.tensor([BOX_A])).shape == (0, 1)
    with pytest.raises(ValueError, match="mode"):
        bbox_overlaps(torch.tensor([BOX_A]), torch.tensor([BOX_A]), mode="dice")
