"""Hungarian matching of 2D image-token predictions to 2D boxes (StreamPETR ``FocalHead``)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

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
from ..box_ops import bbox_cxcywh_to_xyxy
from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class HungarianAssigner2D:
    """One-to-one assignment minimising class + box L1 + (G)IoU + 2D-centre L1 costs.

    Args:
        cls_cost: classification cost, e.g. ``FocalLossCost``.
        reg_cost: L1 cost between normalised boxes, e.g. ``BBoxL1Cost(box_format='xywh')``.
        iou_cost: overlap cost between pixel boxes, e.g. ``IoUCost(iou_mode='giou')``.
        centers2d_cost: L1 cost between normalised 2D centres, e.g. ``BBox3DL1Cost``.
    """

    def __init__(
        self,
        cls_cost: Union[dict, MatchCost, None] = None,
        reg_cost: Union[dict, MatchCost, None] = None,
        iou_cost: Union[dict, MatchCost, None] = None,
        centers2d_cost: Union[dict, MatchCost, None] = None,
    ) -> None:
        if cls_cost is None:
            cls_cost = dict(type="ClassificationCost", weight=1.0)
        if reg_cost is None:
            reg_cost = dict(type="BBoxL1Cost", weight=1.0)
        if iou_cost is None:
            iou_cost = dict(type="IoUCost", iou_mode="giou", weight=1.0)
        if centers2d_cost is None:
            centers2d_cost = dict(type="BBox3DL1Cost", weight=1.0)
        self.cls_cost = build_match_cost(cls_cost)
        self.reg_cost = build_match_cost(reg_cost)
        self.iou_cost = build_match_cost(iou_cost)
        self.centers2d_cost = build_match_cost(centers2d_cost)

    def assign(
        self,
        bbox_pred: Tensor,
        cls_pred: Tensor,
        pred_centers2d: Tensor,
        gt_bboxes: Tensor,
        gt_labels: Tensor,
        centers2d: Tensor,
        img_meta: Mapping[str, Any],
        gt_bboxes_ignore: Optional[Tensor] = None,
    ) -> AssignResult:
        """Assign each image token's prediction to one 2D ground truth or to background.

        Args:
            bbox_pred: ``(Q, 4)`` predicted ``(cx, cy, w, h)`` normalised by the padded size.
            cls_pred: ``(Q, C)`` class logits.
            pred_centers2d: ``(Q, 2)`` predicted projected centres, normalised.
            gt_bboxes: ``(M, 4)`` ground truth ``(x1, y1, x2, y2)`` in pixels.
            gt_labels: ``(M,)`` int64 classes.
            centers2d: ``(M, 2)`` ground-truth projected centres in pixels.
            img_meta: must hold ``'pad_shape'``: ``(H, W)`` or ``(H, W, C)`` of the padded
                image, the size the predictions are normalised by.
            gt_bboxes_ignore: must be None.

        Returns:
            :class:`AssignResult`; all background when ``M == 0``.
        """
        if gt_bboxes_ignore is not None:
            raise ValueError("HungarianAssigner2D does not support gt_bboxes_ignore; pass None")
        factor = _pad_factor(img_meta, gt_bboxes)
        num_queries, num_gts = bbox_pred.shape[0], gt_bboxes.shape[0]
        if num_gts == 0 or num_queries == 0:
            return empty_assignment(num_queries, num_gts, bbox_pred.device)
        cost = self._cost(bbox_pred, cls_pred, pred_centers2d, gt_bboxes, gt_labels, centers2d, factor)
        return match_by_cost(cost, gt_labels)

    def assign_images(
        self,
        bbox_preds: Tensor,
        cls_preds: Tensor,
        pred_centers2d: Tensor,
        gt_bboxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        centers2d: Sequence[Tensor],
        img_meta: Mapping[str, Any],
    ) -> list[Matching]:
        """:meth:`assign` of every image with one device -> host copy of all costs.

        Each image's cost is built on the device exactly as :meth:`assign` builds it (same
        ops on the same views), so the matchings are the same.

        Args:
            bbox_preds: ``(N, Q, 4)``; cls_preds: ``(N, Q, C)``; pred_centers2d: ``(N, Q, 2)``.
            gt_bboxes, gt_labels, centers2d: N tensors ``(M_i, 4)``, ``(M_i,)``, ``(M_i, 2)``.
            img_meta: as in :meth:`assign` (one padded size for all images).

        Returns:
            One host :class:`Matching` per image (empty when ``M_i == 0``).
        """
        factor = _pad_factor(img_meta, bbox_preds)
        num_queries = bbox_preds.shape[1]
        costs = [bbox_preds.new_empty(num_queries, boxes.shape[0]) if boxes.shape[0] == 0 or num_queries == 0
                 else self._cost(bbox_preds[i], cls_preds[i], pred_centers2d[i], boxes, gt_labels[i],
                                 centers2d[i], factor.to(boxes))
                 for i, boxes in enumerate(gt_bboxes)]
        return solve_matchings(costs)

    def _cost(self, bbox_pred: Tensor, cls_pred: Tensor, pred_centers2d: Tensor, gt_bboxes: Tensor,
              gt_labels: Tensor, centers2d: Tensor, factor: Tensor) -> Tensor:
        """``(Q, M)`` cost of one image (arguments as in :meth:`assign`; ``factor`` from
        :func:`_pad_factor` in the GT's dtype)."""
        return (
            self.cls_cost(cls_pred, gt_labels)
            + self.reg_cost(bbox_pred, gt_bboxes / factor)
            + self.iou_cost(bbox_cxcywh_to_xyxy(bbox_pred) * factor, gt_bboxes)
            + self.centers2d_cost(pred_centers2d, centers2d / factor[:2])
        )


def _pad_factor(img_meta: Mapping[str, Any], like: Tensor) -> Tensor:
    """``(4,)`` ``(pad_w, pad_h, pad_w, pad_h)`` of ``img_meta['pad_shape']`` like ``like``
    (one host -> device copy); a clear error without the key."""
    if "pad_shape" not in img_meta:
        raise KeyError(f"HungarianAssigner2D needs img_meta['pad_shape'], got keys {list(img_meta)}")
    pad_h, pad_w = img_meta["pad_shape"][:2]
    return like.new_tensor([pad_w, pad_h, pad_w, pad_h])
