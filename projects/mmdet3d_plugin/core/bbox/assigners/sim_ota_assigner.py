"""SimOTA: YOLOX's dynamic-k label assignment of dense 2D priors (mmdet ``SimOTAAssigner``).

Candidates are priors whose centre lies inside a GT box or within ``center_radius`` strides
of its centre. Each candidate/GT pair costs ``cls_weight * BCE(sqrt(score), onehot) +
iou_weight * -log(IoU)`` (+ a large constant unless the prior is inside **both** the box and
the centre region). Every GT takes its ``k`` cheapest candidates, ``k`` being the sum of its
``candidate_topk`` best IoUs (at least 1); a prior claimed by several GTs keeps the cheapest.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .assign_result import AssignResult
from ..box_ops import bbox_overlaps
from ....registry import TASK_UTILS

_INF = 100000.0


@TASK_UTILS.register_module()
class SimOTAAssigner:
    """Dynamic-k assignment of priors to GT boxes.

    Args:
        center_radius: Half size, in strides, of the centre region around a GT centre.
        candidate_topk: IoUs summed to get each GT's ``k``.
        iou_weight: Weight of the ``-log(IoU)`` cost.
        cls_weight: Weight of the classification cost.
    """

    def __init__(self, center_radius: float = 2.5, candidate_topk: int = 10,
                 iou_weight: float = 3.0, cls_weight: float = 1.0) -> None:
        if candidate_topk < 1:
            raise ValueError(f"SimOTAAssigner: candidate_topk must be >= 1, got {candidate_topk}")
        self.center_radius = center_radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight

    @torch.no_grad()
    def assign(self, pred_scores: Tensor, priors: Tensor, decoded_bboxes: Tensor, gt_bboxes: Tensor,
               gt_labels: Tensor, gt_bboxes_ignore: Optional[Tensor] = None,
               eps: float = 1e-7) -> AssignResult:
        """Assign priors to GT boxes.

        Args:
            pred_scores: ``(P, C)`` class probabilities (already multiplied by objectness).
            priors: ``(P, 4)`` ``(cx, cy, stride_w, stride_h)``.
            decoded_bboxes: ``(P, 4)`` predicted boxes ``x1, y1, x2, y2``.
            gt_bboxes: ``(M, 4)`` ``x1, y1, x2, y2``; gt_labels: ``(M,)`` int64.
            gt_bboxes_ignore: must be None.
            eps: added to IoUs inside the log.

        Returns:
            :class:`AssignResult` with ``max_overlaps`` the IoU of each positive with its GT
            (``-INF`` for the others).
        """
        if gt_bboxes_ignore is not None:
            raise ValueError("SimOTAAssigner does not support gt_bboxes_ignore; pass None")
        num_priors, num_gts = priors.shape[0], gt_bboxes.shape[0]
        gt_inds = priors.new_zeros(num_priors, dtype=torch.long)
        labels = priors.new_full((num_priors,), -1, dtype=torch.long)
        max_overlaps = priors.new_full((num_priors,), -_INF)
        if num_gts == 0 or num_priors == 0:
            return AssignResult(num_gts, gt_inds, labels, priors.new_zeros(num_priors))
        candidate, in_both = self.candidates(priors, gt_bboxes)
        ious = bbox_overlaps(decoded_bboxes[candidate], gt_bboxes)
        scores = pred_scores[candidate].float().sqrt().unsqueeze(1).expand(-1, num_gts, -1)
        onehot = F.one_hot(gt_labels.long(), pred_scores.shape[-1]).float().unsqueeze(0).expand_as(scores)
        cls_cost = F.binary_cross_entropy(scores, onehot, reduction="none").sum(-1)
        cost = (cls_cost * self.cls_weight - torch.log(ious + eps) * self.iou_weight
                + (~in_both).float() * _INF)
        matched, matched_gt, matched_iou = self.dynamic_k_matching(cost, ious)
        positive = torch.nonzero(candidate).squeeze(1)[matched]
        gt_inds[positive] = matched_gt + 1
        labels[positive] = gt_labels.long()[matched_gt]
        max_overlaps[positive] = matched_iou
        return AssignResult(num_gts, gt_inds, labels, max_overlaps)

    def candidates(self, priors: Tensor, gt_bboxes: Tensor) -> tuple[Tensor, Tensor]:
        """Candidate priors and which candidate/GT pairs lie in both box and centre region.

        Returns:
            ``candidate`` ``(P,)`` bool (inside some box or some centre region) and
            ``in_both`` ``(P_c, M)`` bool for the candidates.
        """
        centres, strides = priors[:, None, :2], priors[:, None, 2:]
        in_box = torch.cat([centres - gt_bboxes[None, :, :2], gt_bboxes[None, :, 2:] - centres],
                           dim=-1).min(dim=-1).values > 0
        gt_centres = (gt_bboxes[None, :, :2] + gt_bboxes[None, :, 2:]) / 2
        radius = self.center_radius * strides
        in_centre = torch.cat([centres - (gt_centres - radius), (gt_centres + radius) - centres],
                              dim=-1).min(dim=-1).values > 0
        candidate = in_box.any(dim=1) | in_centre.any(dim=1)
        return candidate, (in_box & in_centre)[candidate]

    def dynamic_k_matching(self, cost: Tensor, ious: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Dynamic-k matching of ``(P_c, M)`` costs and IoUs.

        Returns:
            ``matched`` ``(P_c,)`` bool, and for the matched candidates the GT index and IoU.
        """
        topk = min(self.candidate_topk, ious.shape[0])
        dynamic_ks = ious.topk(topk, dim=0).values.sum(dim=0).int().clamp(min=1)
        ranks = cost.argsort(dim=0).argsort(dim=0)
        matching = ranks < dynamic_ks.unsqueeze(0)
        contested = matching.sum(dim=1) > 1
        if contested.any():
            cheapest = cost[contested].argmin(dim=1)
            matching[contested] = F.one_hot(cheapest, cost.shape[1]).bool()
        matched = matching.any(dim=1)
        matched_gt = matching[matched].float().argmax(dim=1)
        matched_iou = (matching.float() * ious).sum(dim=1)[matched]
        return matched, matched_gt, matched_iou
