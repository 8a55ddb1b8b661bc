"""Hungarian matching of 3D query predictions to ground-truth boxes (StreamPETR / DETR3D)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import Tensor

from .assign_result import AssignResult
from .hungarian_matching import (
    Matching,
    MatchCost,
    build_match_cost,
    empty_assignment,
    match_by_cost,
    solve_matchings,
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
        gt_codes = self._gt_codes(gt_bboxes, code_weights, with_velo)
        return match_by_cost(self._cost(bbox_pred, cls_pred, gt_codes, gt_labels, code_weights,
                                        with_velo), gt_labels)

    def assign_layers(
        self,
        bbox_preds: Tensor,
        cls_preds: Tensor,
        gt_bboxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        code_weights: Optional[Tensor] = None,
        with_velo: bool = False,
    ) -> list[list[Matching]]:
        """:meth:`assign` of every decoder layer and sample with one device -> host copy.

        The cost of each (layer, sample) is built on the device exactly as :meth:`assign`
        builds it (same ops on the same views: same costs bit for bit), all costs cross to
        the host together and scipy solves each there.

        Args:
            bbox_preds: ``(L, B, Q, 10)`` predicted box codes; cls_preds: ``(L, B, Q, C)``.
            gt_bboxes: B tensors ``(M_b, 9)``; gt_labels: B int64 tensors ``(M_b,)``, on the
                predictions' device.
            code_weights, with_velo: as in :meth:`assign`.

        Returns:
            ``matchings[l][b]`` on the host (empty when ``M_b == 0`` or ``Q == 0``); turn
            them into :class:`AssignResult` with :func:`assign_results`.
        """
        num_layers, batch = bbox_preds.shape[:2]
        per_sample = [self._layer_costs(bbox_preds[:, b], cls_preds[:, b], gt_bboxes[b], gt_labels[b],
                                        code_weights, with_velo) for b in range(batch)]
        solved = solve_matchings([per_sample[b][layer] for layer in range(num_layers)
                                  for b in range(batch)])
        return [solved[layer * batch:(layer + 1) * batch] for layer in range(num_layers)]

    def _layer_costs(self, bbox_preds: Tensor, cls_preds: Tensor, gt_bboxes: Tensor, gt_labels: Tensor,
                     code_weights: Optional[Tensor], with_velo: bool) -> list[Tensor]:
        """L costs ``(Q, M)`` of one sample's ``bbox_preds (L, Q, 10)``, ``cls_preds (L, Q, C)``
        (empty ones when ``M == 0`` or ``Q == 0``)."""
        num_layers, num_queries = bbox_preds.shape[:2]
        if gt_bboxes.shape[0] == 0 or num_queries == 0:
            return [bbox_preds.new_empty(num_queries, gt_bboxes.shape[0])] * num_layers
        gt_codes = self._gt_codes(gt_bboxes, code_weights, with_velo)
        return [self._cost(bbox_preds[layer], cls_preds[layer], gt_codes, gt_labels, code_weights,
                           with_velo) for layer in range(num_layers)]

    def _gt_codes(self, gt_bboxes: Tensor, code_weights: Optional[Tensor], with_velo: bool) -> Tensor:
        """``(M, 10)`` (``(M, 8)`` without velocity) weighted GT codes of the cost."""
        gt_codes = normalize_bbox(gt_bboxes, self.pc_range)
        if code_weights is not None:
            gt_codes = gt_codes * code_weights
        return gt_codes if with_velo else gt_codes[:, :_NUM_CODES_NO_VELOCITY]

    def _cost(self, bbox_pred: Tensor, cls_pred: Tensor, gt_codes: Tensor, gt_labels: Tensor,
              code_weights: Optional[Tensor], with_velo: bool) -> Tensor:
        """``(Q, M)`` classification + regression cost of ``bbox_pred (Q, 10)``,
        ``cls_pred (Q, C)`` against the weighted ``gt_codes`` of :meth:`_gt_codes`."""
        if code_weights is not None:
            bbox_pred = bbox_pred * code_weights
        if not with_velo:
            bbox_pred = bbox_pred[:, :_NUM_CODES_NO_VELOCITY]
        return self.cls_cost(cls_pred, gt_labels) + self.reg_cost(bbox_pred, gt_codes)
