"""Conversion between 3D boxes ``(x, y, z, l, w, h, yaw, vx, vy)`` and box codes.

The box code is what the query heads regress::

    cx, cy, cz, log l, log w, log h, sin yaw, cos yaw, vx, vy

Centres stay metric (they are de-normalised from the point-cloud range by the head before
the code is formed), sizes are stored as logarithms and the heading as its sine and cosine.
The slot order equals StreamPETR's ``normalize_bbox``: upstream calls box index 3 "w", but
it is the size along the heading (``l`` here) and lands in code slot 3 either way, so
published weights regress the same quantity in the same slot.

Boxes without velocity ``(..., 7)`` map to codes ``(..., 8)`` and back.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .box_layout import (
    BOX_DIM,
    CODE_COS_YAW,
    CODE_DIM,
    CODE_LOG_H,
    CODE_LOG_L,
    CODE_LOG_W,
    CODE_SIN_YAW,
    CODE_VX,
    CODE_VY,
    CODE_X,
    CODE_Y,
    CODE_Z,
    H,
    L,
    VX,
    VY,
    W,
    X,
    Y,
    YAW,
    Z,
)

_BOX_DIM_NO_VELOCITY = YAW + 1
_CODE_DIM_NO_VELOCITY = CODE_COS_YAW + 1


def normalize_bbox(bboxes: Tensor, pc_range: Optional[Sequence[float]] = None) -> Tensor:
    """Encode boxes as box codes.

    Args:
        bboxes: ``(..., 9)`` boxes in the box layout, or ``(..., 7)`` without velocity.
        pc_range: accepted for StreamPETR call compatibility; the code keeps metric
            centres, so the range is not used.

    Returns:
        ``(..., 10)`` codes ``(cx, cy, cz, log l, log w, log h, sin, cos, vx, vy)``, or
        ``(..., 8)`` for boxes without velocity.
    """
    dim = bboxes.shape[-1]
    if dim not in (BOX_DIM, _BOX_DIM_NO_VELOCITY):
        raise ValueError(
            f"normalize_bbox expects boxes of size {BOX_DIM} (or {_BOX_DIM_NO_VELOCITY} "
            f"without velocity) in the last dimension, got shape {tuple(bboxes.shape)}"
        )
    code_dim = CODE_DIM if dim == BOX_DIM else _CODE_DIM_NO_VELOCITY
    codes = bboxes.new_empty(*bboxes.shape[:-1], code_dim)
    codes[..., CODE_X] = bboxes[..., X]
    codes[..., CODE_Y] = bboxes[..., Y]
    codes[..., CODE_Z] = bboxes[..., Z]
    codes[..., CODE_LOG_L] = bboxes[..., L].log()
    codes[..., CODE_LOG_W] = bboxes[..., W].log()
    codes[..., CODE_LOG_H] = bboxes[..., H].log()
    codes[..., CODE_SIN_YAW] = bboxes[..., YAW].sin()
    codes[..., CODE_COS_YAW] = bboxes[..., YAW].cos()
    if dim == BOX_DIM:
        codes[..., CODE_VX] = bboxes[..., VX]
        codes[..., CODE_VY] = bboxes[..., VY]
    return codes


def denormalize_bbox(codes: Tensor, pc_range: Optional[Sequence[float]] = None) -> Tensor:
    """Decode box codes into boxes; the inverse of :func:`normalize_bbox`.

    Args:
        codes: ``(..., 10)`` box codes, or ``(..., 8)`` without velocity.
        pc_range: accepted for StreamPETR call compatibility; not used (metric centres).

    Returns:
        ``(..., 9)`` boxes ``(x, y, z, l, w, h, yaw, vx, vy)`` with yaw in ``(-pi, pi]``,
        or ``(..., 7)`` for codes without velocity.
    """
    dim = codes.shape[-1]
    if dim not in (CODE_DIM, _CODE_DIM_NO_VELOCITY):
        raise ValueError(
            f"denormalize_bbox expects codes of size {CODE_DIM} (or {_CODE_DIM_NO_VELOCITY} "
            f"without velocity) in the last dimension, got shape {tuple(codes.shape)}"
        )
    box_dim = BOX_DIM if dim == CODE_DIM else _BOX_DIM_NO_VELOCITY
    boxes = codes.new_empty(*codes.shape[:-1], box_dim)
    boxes[..., X] = codes[..., CODE_X]
    boxes[..., Y] = codes[..., CODE_Y]
    boxes[..., Z] = codes[..., CODE_Z]
    boxes[..., L] = codes[..., CODE_LOG_L].exp()
    boxes[..., W] = codes[..., CODE_LOG_W].exp()
    boxes[..., H] = codes[..., CODE_LOG_H].exp()
    boxes[..., YAW] = torch.atan2(codes[..., CODE_SIN_YAW], codes[..., CODE_COS_YAW])
    if dim == CODE_DIM:
        boxes[..., VX] = codes[..., CODE_VX]
        boxes[..., VY] = codes[..., CODE_VY]
    return boxes
