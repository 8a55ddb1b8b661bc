"""Box geometry: 3D box corners, 2D box format conversion and 2D (G)IoU."""
from __future__ import annotations

import torch
from torch import Tensor

from .box_layout import BOX_DIM, H, L, W, X, YAW, Z

# Unit-cube corners (x, y, z) in {0, 1}^3, in mmdet3d's order; see ``box3d_corners``.
_UNIT_CORNERS = (
    (0, 0, 0),
    (0, 0, 1),
    (0, 1, 1),
    (0, 1, 0),
    (1, 0, 0),
    (1, 0, 1),
    (1, 1, 1),
    (1, 1, 0),
)


def box3d_corners(boxes: Tensor) -> Tensor:
    """The eight corners of 3D boxes.

    Corner ``i`` is ``centre + R(yaw) @ ((a, b, c) - 0.5) * (l, w, h)`` with ``(a, b, c)``::

        0: (0, 0, 0)   1: (0, 0, 1)   2: (0, 1, 1)   3: (0, 1, 0)
        4: (1, 0, 0)   5: (1, 0, 1)   6: (1, 1, 1)   7: (1, 1, 0)

    i.e. corners 0-3 are at the rear (``-l/2`` along the heading), 4-7 at the front;
    ``b = 0`` is the right side (``-w/2``), ``c = 0`` the bottom. This is mmdet3d's
    ``LiDARInstance3DBoxes.corners`` order for a box whose ``z`` is its geometric centre.

    Args:
        boxes: ``(..., 9)`` box layout (``(..., 7)`` also accepted).

    Returns:
        ``(..., 8, 3)`` corner coordinates in the boxes' frame.
    """
    if boxes.shape[-1] not in (BOX_DIM, YAW + 1):
        raise ValueError(f"box3d_corners expects (..., {BOX_DIM}) boxes, got {tuple(boxes.shape)}")
    unit = torch.tensor(_UNIT_CORNERS, dtype=boxes.dtype, device=boxes.device) - 0.5
    local = unit * boxes[..., None, L : H + 1]
    cos, sin = boxes[..., YAW].cos()[..., None], boxes[..., YAW].sin()[..., None]
    rot_x = local[..., 0] * cos - local[..., 1] * sin
    rot_y = local[..., 0] * sin + local[..., 1] * cos
    rotated = torch.stack((rot_x, rot_y, local[..., 2]), dim=-1)
    return rotated + boxes[..., None, X : Z + 1]


def bbox_xyxy_to_cxcywh(bbox: Tensor) -> Tensor:
    """``(..., 4)`` ``(x1, y1, x2, y2)`` -> ``(..., 4)`` ``(cx, cy, w, h)``."""
    x1, y1, x2, y2 = bbox.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def bbox_cxcywh_to_xyxy(bbox: Tensor) -> Tensor:
    """``(..., 4)`` ``(cx, cy, w, h)`` -> ``(..., 4)`` ``(x1, y1, x2, y2)``."""
    cx, cy, w, h = bbox.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def bbox_overlaps(
    bboxes1: Tensor,
    bboxes2: Tensor,
    mode: str = "iou",
    is_aligned: bool = False,
    eps: float = 1e-6,
) -> Tensor:
    """IoU, IoF or generalised IoU between 2D boxes ``(x1, y1, x2, y2)`` (mmdet semantics).

    Args:
        bboxes1: ``(N, 4)``.
        bboxes2: ``(M, 4)``; ``M == N`` when ``is_aligned``.
        mode: ``'iou'``, ``'iof'`` (intersection over ``bboxes1``'s area) or ``'giou'``.
        is_aligned: compare row ``i`` with row ``i`` only.
        eps: lower bound of the union and of the enclosing area.

    Returns:
        ``(N, M)``, or ``(N,)`` when ``is_aligned``.
    """
    if mode not in ("iou", "iof", "giou"):
        raise ValueError(f"bbox_overlaps: mode must be 'iou', 'iof' or 'giou', got {mode!r}")
    if is_aligned and bboxes1.shape[0] != bboxes2.shape[0]:
        raise ValueError(
            f"bbox_overlaps: is_aligned needs as many boxes on both sides, "
            f"got {bboxes1.shape[0]} and {bboxes2.shape[0]}"
        )
    if not is_aligned:
        bboxes1, bboxes2 = bboxes1[:, None, :], bboxes2[None, :, :]
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    top_left = torch.max(bboxes1[..., :2], bboxes2[..., :2])
    bottom_right = torch.min(bboxes1[..., 2:], bboxes2[..., 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area1 if mode == "iof" else area1 + area2 - overlap
    union = union.clamp(min=eps)
    ious = overlap / union
    if mode != "giou":
        return ious
    enclose_tl = torch.min(bboxes1[..., :2], bboxes2[..., :2])
    enclose_br = torch.max(bboxes1[..., 2:], bboxes2[..., 2:])
    enclose_area = (enclose_br - enclose_tl).clamp(min=0).prod(-1).clamp(min=eps)
    return ious - (enclose_area - union) / enclose_area
