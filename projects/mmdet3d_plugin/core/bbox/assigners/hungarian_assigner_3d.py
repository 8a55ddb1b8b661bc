"""Hungarian matching of 3D query predictions to ground-truth boxes (StreamPETR / DETR3D)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import Tensor

from .assign_result import AssignResult
from .hungarian_matching import (
    MatchCost,
    build_match_cost,
    empty_assignment,
    match_by_cost,
)
from ..box_layout import CODE_COS_YAW
from ..util import normalize_bbox
from ....registry import TASK_UTILS

_NUM_CODES_NO_VELOCITY = CODE_COS_YAW + 1


@TASK_UTILS.register_module()
class HungarianAssigner3D:
    """One-to-one assignment minimising classification + box-code L1 cost.

    Args:
        cls_cost: classification cost (config or built), e.g. ``FocalLossCost``.
        reg_cost: regression cost on box codes, e.g. ``BBox3DL1Cost``.
        iou_cost: accepted for config compatibility (StreamPETR passes a zero-weight
            ``IoUCost``); built to validate it but not used, as there is no 3D IoU cost.
        pc_range: point-cloud range, passed on to :func:`normalize_bbox`.
    """

    def __init__(
        self,
        cls_cost: Union[dict, MatchCost, None] = None,
        reg_cost: Union[dict, MatchCost, None] = None,
        iou_cost: Union[dict, MatchCost, None] = None,
        pc_range: Optional[Sequence[float]] = None,
    ) -> None:
        cls_cost = dict(type="ClassificationCost", weight=1.0) if cls_cost is None else cls_cost
        reg_cost = dict(type="BBoxL1Cost", weight=1.0) if reg_cost is None else reg_cost
        self.cls_cost = build_match_cost(cls_cost)
        self.reg_cost = build_match_cost(reg_cost)
        self.iou_cost = build_match_cost(iou_cost)
        self.pc_range = None if pc_range is None else list(pc_range)

    def assign(
        self,
        bbox_pred: Tensor,
        cls_pred: Tensor,
        gt_bboxes: Tensor,
        gt_labels: Tensor,
        gt_bboxes_ignore: Optional[Tensor] = None,
        code_weights: Optional[Tensor] = None,
        with_velo: bool = False,
    ) -> AssignResult:
        """Assign each query to one ground-truth box or to background.

        Args:
            bbox_pred: ``(Q, 10)`` predicted box codes (metric centres).
            cls_pred: ``(Q, C)`` class logits.
            gt_bboxes: ``(M, 9)`` ground truth in the box layout.
            gt_labels: ``(M,)`` int64 classes.
            gt_bboxes_ignore: must be None (ignored boxes are not supported).
            code_weights: ``(10,)`` per-code weights applied to both sides before the cost
                (StreamPETR's ``match_costs``); None for plain codes.
            with_velo: include the velocity codes in the regression cost; by default only
                the first 8 codes (centre, size, heading) are compared.

        Returns:
            :class:`AssignResult` with ``min(Q, M)`` foreground queries; all background
            when ``M == 0``.
        """
        if gt_bboxes_ignore is not None:
            raise ValueError("HungarianAssigner3D does not support gt_bboxes_ignore; pass None")
        num_queries, num_gts = bbox_pred.shape[0], gt_bboxes.shape[0]
        if num_gts == 0 or num_queries == 0:
            return empty_assignment(num_queries, num_gts, bbox_pred.device)
        gt_codes = normalize_bbox(gt_bboxes, self.pc_range)
        if code_weights is not None:
            bbox_pred = bbox_pred * code_weights
            gt_codes = gt_codes * code_weights
        if not with_velo:
            bbox_pred = bbox_pred[:, :_NUM_CODES_NO_VELOCITY]
            gt_codes = gt_codes[:, :_NUM_CODES_NO_VELOCITY]
        cost = self.cls_cost(cls_pred, gt_labels) + self.reg_cost(bbox_pred, gt_codes)
        return match_by_cost(cost, gt_labels)
