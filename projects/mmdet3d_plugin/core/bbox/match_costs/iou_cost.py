"""(G)IoU cost between 2D boxes (mmdet ``IoUCost``)."""
from __future__ import annotations

from torch import Tensor

from ..box_ops import bbox_overlaps
from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class IoUCost:
    """``cost[q, g] = -weight * overlap(pred[q], gt[g])``.

    Args:
        iou_mode: ``'iou'``, ``'iof'`` or ``'giou'``.
        weight: scale of the cost.
    """

    def __init__(self, iou_mode: str = "giou", weight: float = 1.0) -> None:
        if iou_mode not in ("iou", "iof", "giou"):
            raise ValueError(f"IoUCost: iou_mode must be 'iou', 'iof' or 'giou', got {iou_mode!r}")
        self.iou_mode = iou_mode
        self.weight = weight

    def __call__(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """``bboxes (Q, 4)``, ``gt_bboxes (M, 4)``, both xyxy -> cost ``(Q, M)``."""
        return -bbox_overlaps(bboxes, gt_bboxes, mode=self.iou_mode) * self.weight
