"""L1 cost between normalised 2D boxes (mmdet ``BBoxL1Cost``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..box_ops import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class BBoxL1Cost:
    """L1 distance between predicted ``(cx, cy, w, h)`` and GT ``(x1, y1, x2, y2)`` boxes.

    Args:
        weight: scale of the cost.
        box_format: the format the distance is measured in: ``'xyxy'`` converts the
            predictions to corners, ``'xywh'`` converts the GT to centre-size.
    """

    def __init__(self, weight: float = 1.0, box_format: str = "xyxy") -> None:
        if box_format not in ("xyxy", "xywh"):
            raise ValueError(f"BBoxL1Cost: box_format must be 'xyxy' or 'xywh', got {box_format!r}")
        self.weight = weight
        self.box_format = box_format

    def __call__(self, bbox_pred: Tensor, gt_bboxes: Tensor) -> Tensor:
        """``bbox_pred (num_query, 4)`` cxcywh, ``gt_bboxes (num_gt, 4)`` xyxy, both normalised.

        Returns:
            ``(num_query, num_gt)``.
        """
        if self.box_format == "xywh":
            gt_bboxes = bbox_xyxy_to_cxcywh(gt_bboxes)
        else:
            bbox_pred = bbox_cxcywh_to_xyxy(bbox_pred)
        return torch.cdist(bbox_pred, gt_bboxes, p=1) * self.weight
