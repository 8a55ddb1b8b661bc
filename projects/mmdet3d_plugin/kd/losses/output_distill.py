"""Objectness-scaled output distillation on Hungarian-matched teacher–student queries.

The student's queries are paired with the teacher's by :class:`~.query_matching.QueryMatcher`
(centre L1 in metres + class-probability L1), never by index. For every pair ``k``:

* **class**: Hinton KD on the **sigmoid** outputs, the natural form for heads trained with
  sigmoid focal loss: per class a binary KL between ``p_T = sigmoid(z_T / T)`` and
  ``p_S = sigmoid(z_S / T)``, summed over classes, times ``T^2``::

      kl_k = T^2 * sum_c [p_T log(p_T / p_S) + (1 - p_T) log((1 - p_T) / (1 - p_S))]

* **box**: ``l1_k = sum_d code_weights[d] * |b_S[d] - b_T[d]|`` on the box code
  ``(cx, cy, cz, log l, log w, log h, sin, cos, vx, vy)``, and optionally
  ``1 - GIoU`` of the BEV boxes (the axis-aligned hulls of the rotated footprints).

Each pair is weighted by the teacher's confidence ``w_k = max_c sigmoid(z_T[k, c])``
(YOLO-style objectness scaling, so the many background queries do not dominate)::

    loss = loss_weight * sum_k w_k (cls_weight kl_k + box_weight l1_k + giou_weight (1 - giou_k))
           / sum_k w_k

Zero for identical student and teacher outputs; gradients reach the student only.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM
from ...core.bbox.box_ops import bbox_overlaps, box3d_corners
from ...core.bbox.util import denormalize_bbox
from ...registry import MODELS
from .query_matching import build_matcher, match_outputs

DEFAULT_CODE_WEIGHTS = (1.0,) * 8 + (0.2, 0.2)


def sigmoid_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Per-class binary KL ``KL(sigmoid(z_T / T) || sigmoid(z_S / T))`` summed over classes.

    Args:
        student_logits, teacher_logits: ``(..., C)``.

    Returns:
        ``(...)`` times ``T^2``.
    """
    student, teacher = student_logits / temperature, teacher_logits / temperature
    log_s, log_not_s = F.logsigmoid(student), F.logsigmoid(-student)
    log_t, log_not_t = F.logsigmoid(teacher), F.logsigmoid(-teacher)
    kl = log_t.exp() * (log_t - log_s) + log_not_t.exp() * (log_not_t - log_not_s)
    return kl.sum(dim=-1) * temperature ** 2


def bev_hull_boxes(codes: Tensor) -> Tensor:
    """Axis-aligned BEV hulls ``(..., 4)`` ``(x1, y1, x2, y2)`` of box codes ``(..., 10)``."""
    corners = box3d_corners(denormalize_bbox(codes))[..., :2]
    return torch.cat([corners.amin(dim=-2), corners.amax(dim=-2)], dim=-1)


@MODELS.register_module()
class OutputDistillLoss(nn.Module):
    """Class and box distillation on matched queries, scaled by teacher confidence.

    Args:
        temperature: ``T`` of the sigmoid KD.
        cls_weight, box_weight, giou_weight: factors of the three terms.
        code_weights: ``(10,)`` per-code weights of the box L1 (default: velocity 0.2).
        matcher: :class:`~.query_matching.QueryMatcher` arguments (None: defaults).
        num_queries: keep the last ``num_queries`` queries of every input (drops the DN
            queries in front of the student's while training); None keeps all.
        loss_weight: factor on the loss.
    """

    def __init__(self, temperature: float = 1.0, cls_weight: float = 1.0, box_weight: float = 1.0,
                 giou_weight: float = 0.0, code_weights: Optional[Sequence[float]] = None,
                 matcher: Optional[dict] = None, num_queries: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        code_weights = DEFAULT_CODE_WEIGHTS if code_weights is None else tuple(code_weights)
        if temperature <= 0 or len(code_weights) != CODE_DIM or min(cls_weight, box_weight, giou_weight) < 0:
            raise ValueError(f"OutputDistillLoss needs temperature > 0, {CODE_DIM} code_weights and "
                             f"non-negative term weights; got temperature={temperature}, "
                             f"code_weights={code_weights}, weights={(cls_weight, box_weight, giou_weight)}")
        self.temperature = float(temperature)
        self.cls_weight = float(cls_weight)
        self.box_weight = float(box_weight)
        self.giou_weight = float(giou_weight)
        self.register_buffer("code_weights", torch.tensor(code_weights, dtype=torch.float32),
                             persistent=False)
        self.matcher = build_matcher(matcher)
        self.num_queries = num_queries
        self.loss_weight = float(loss_weight)

    def pair_losses(self, student_cls: Tensor, student_box: Tensor, teacher_cls: Tensor,
                    teacher_box: Tensor) -> Tensor:
        """Unweighted loss of every pair ``(B, K)`` from paired ``(B, K, C)`` / ``(B, K, 10)``."""
        if student_box.shape[-1] != CODE_DIM or teacher_box.shape != student_box.shape:
            raise ValueError(f"OutputDistillLoss expects box codes (B, Q, {CODE_DIM}), got student "
                             f"{tuple(student_box.shape)} and teacher {tuple(teacher_box.shape)}")
        loss = self.cls_weight * sigmoid_kl(student_cls, teacher_cls, self.temperature)
        l1 = ((student_box - teacher_box).abs() * self.code_weights.to(student_box)).sum(dim=-1)
        loss = loss + self.box_weight * l1
        if self.giou_weight > 0:
            hull_s, hull_t = bev_hull_boxes(student_box), bev_hull_boxes(teacher_box)
            giou = bbox_overlaps(hull_s.reshape(-1, 4), hull_t.reshape(-1, 4), mode="giou", is_aligned=True)
            loss = loss + self.giou_weight * (1 - giou.view_as(l1))
        return loss

    def forward(self, student_cls: Tensor, student_box: Tensor, teacher_cls: Tensor,
                teacher_box: Tensor) -> Tensor:
        """Distil the teacher's outputs into the matched student queries.

        Args:
            student_cls: ``(B, Q_s, C)`` logits; student_box: ``(B, Q_s, 10)`` box codes with
                metric centres (the heads' ``box_codes`` method, tapped at
                ``pts_bbox_head.box_codes``).
            teacher_cls: ``(B, Q_t, C)``; teacher_box: ``(B, Q_t, 10)``.

        Returns:
            Weighted scalar loss.
        """
        matched = match_outputs(self.matcher, self.num_queries, student_cls, student_box,
                                teacher_cls, teacher_box)
        losses = self.pair_losses(matched.student_cls, matched.student_box, matched.teacher_cls,
                                  matched.teacher_box)
        weights = matched.teacher_scores.to(losses)
        return self.loss_weight * (weights * losses).sum() / weights.sum().clamp(min=1e-6)
