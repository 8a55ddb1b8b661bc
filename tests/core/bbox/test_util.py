"""Box <-> box-code conversion: slot layout, round trip, velocity-free variant, errors."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_layout import (
    CODE_COS_YAW,
    CODE_LOG_H,
    CODE_LOG_L,
    CODE_LOG_W,
    CODE_SIN_YAW,
    CODE_VX,
    CODE_VY,
)
from projects.mmdet3d_plugin.core.bbox.util import denormalize_bbox, normalize_bbox


def test_normalize_bbox_slots_match_hand_values():
    box = torch.tensor([1.0, -2.0, 0.5, 4.0, 2.0, 1.5, 0.3, 3.0, -1.0])
    code = normalize_bbox(box, pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0])
    assert code.shape == (10,)
    assert torch.allclose(code[:3], box[:3])
    assert code[CODE_LOG_L] == pytest.approx(math.log(4.0))
    assert code[CODE_LOG_W] == pytest.approx(math.log(2.0))
    assert code[CODE_LOG_H] == pytest.approx(math.log(1.5))
    assert code[CODE_SIN_YAW] == pytest.approx(math.sin(0.3))
    assert code[CODE_COS_YAW] == pytest.approx(math.cos(0.3))
    assert (code[CODE_VX].item(), code[CODE_VY].item()) == (3.0, -1.0)


def test_normalize_bbox_matches_upstream_slot_order():
    """StreamPETR logs box index 3 into code slot 3, 4 into 4 and 5 into 5."""
    boxes = torch.rand(5, 9) + 0.1
    codes = normalize_bbox(boxes)
    assert torch.allclose(codes[:, 3:6], boxes[:, 3:6].log())


def test_round_trip_batched_and_yaw_wraps():
    torch.manual_seed(0)
    boxes = torch.rand(2, 7, 9) * 4 + 0.2
    boxes[..., 6] = torch.rand(2, 7) * 2 * math.pi - math.pi
    assert torch.allclose(denormalize_bbox(normalize_bbox(boxes)), boxes, atol=1e-5)
    wrapped = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 3.5, 0.0, 0.0])
    back = denormalize_bbox(normalize_bbox(wrapped))
    assert back[6] == pytest.approx(3.5 - 2 * math.pi, abs=1e-6)


def test_codes_round_trip_through_boxes():
    codes = torch.tensor([[1.0, 2.0, 3.0, 0.1, -0.2, 0.3, 0.6, 0.8, 0.5, -0.5]])
    assert torch.allclose(normalize_bbox(denormalize_bbox(codes)), codes, atol=1e-6)


def test_without_velocity():
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0, 2.0, 1.0, 0.5]])
    codes = normalize_bbox(boxes)
    assert codes.shape == (1, 8)
    assert torch.allclose(denormalize_bbox(codes), boxes, atol=1e-6)


def test_wrong_width_raises():
    with pytest.raises(ValueError, match="normalize_bbox"):
        normalize_bbox(torch.ones(3, 8))
    with pytest.raises(ValueError, match="denormalize_bbox"):
        denormalize_bbox(torch.ones(3, 9))


def test_gradients_flow():
    codes = torch.randn(4, 10, requires_grad=True)
    denormalize_bbox(codes).sum().backward()
    assert codes.grad is not None and torch.isfinite(codes.grad).all()
