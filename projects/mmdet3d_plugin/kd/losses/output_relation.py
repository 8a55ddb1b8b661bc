"""Relation distillation among matched queries: student relation matrix vs teacher's.

The queries are paired by :class:`~.query_matching.QueryMatcher` (``K`` pairs per sample,
ordered alike on both sides); each side then builds a ``(K, K)`` relation among its own
paired queries:

* ``'center_distance'``: Euclidean distances of the predicted centres (metres), divided by
  their mean over the off-diagonal entries (RKD's scale normalisation);
* ``'class_cosine'``: cosine similarity of the sigmoid class-probability vectors;
* ``'feature_cosine'``: cosine similarity of the query features (``student_feats`` /
  ``teacher_feats``, e.g. the decoder layer output; channel counts may differ).

and the two relations are compared by ``'mse'`` (weighted by ``w_i w_j``) or ``'kl'``
(row-wise ``softmax(±R / T)``, ``-R`` for distances so near queries get high probability,
``KL(teacher || student) * T^2`` per row, weighted by ``w_i``), where ``w`` is the teacher's
confidence (max sigmoid score) of each pair. Zero for identical inputs; teacher detached.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_X, CODE_Z
from ...registry import MODELS
from .query_matching import (MatchedOutputs, build_matcher, gather_queries, match_outputs,
                             take_last_queries)

RELATIONS = ("center_distance", "class_cosine", "feature_cosine")
LOSS_TYPES = ("mse", "kl")


def distance_relation(points: Tensor) -> Tensor:
    """Pairwise distances ``(B, K, K)`` of ``(B, K, D)``, normalised by the off-diagonal mean."""
    distances = torch.cdist(points, points)
    count = points.shape[1] * (points.shape[1] - 1)
    mean = distances.sum(dim=(1, 2), keepdim=True) / max(count, 1)
    return distances / mean.clamp(min=1e-6)


def cosine_relation(vectors: Tensor) -> Tensor:
    """Pairwise cosine similarities ``(B, K, K)`` of ``(B, K, D)``."""
    unit = F.normalize(vectors, dim=-1, eps=1e-6)
    return unit @ unit.transpose(1, 2)


def relation_divergence(student: Tensor, teacher: Tensor, weights: Tensor, loss_type: str,
                        temperature: float, sign: float) -> Tensor:
    """Weighted MSE or row-wise KL between relations ``(B, K, K)``; weights ``(B, K)``."""
    if loss_type == "mse":
        pair_weights = weights.unsqueeze(2) * weights.unsqueeze(1)
        return (pair_weights * (student - teacher).pow(2)).sum() / pair_weights.sum().clamp(min=1e-6)
    log_p_s = F.log_softmax(sign * student / temperature, dim=-1)
    log_p_t = F.log_softmax(sign * teacher / temperature, dim=-1)
    rows = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1) * temperature ** 2
    return (weights * rows).sum() / weights.sum().clamp(min=1e-6)


@MODELS.register_module()
class OutputRelationLoss(nn.Module):
    """Relation among matched queries, student vs teacher.

    Args:
        relation: one of :data:`RELATIONS`.
        loss_type: ``'mse'`` or ``'kl'``.
        temperature: softmax temperature of ``'kl'``.
        matcher: :class:`~.query_matching.QueryMatcher` arguments; its ``num_pairs`` (the
            teacher's top-K queries) bounds the ``(K, K)`` relation size.
        num_queries: keep the last ``num_queries`` queries of every input (drops DN queries).
        loss_weight: factor on the loss.
    """

    def __init__(self, relation: str = "center_distance", loss_type: str = "mse",
                 temperature: float = 1.0, matcher: Optional[dict] = None,
                 num_queries: Optional[int] = None, loss_weight: float = 1.0) -> None:
        super().__init__()
        if relation not in RELATIONS or loss_type not in LOSS_TYPES or temperature <= 0:
            raise ValueError(f"OutputRelationLoss: relation in {RELATIONS}, loss_type in {LOSS_TYPES} "
                             f"and temperature > 0 needed; got {relation!r}, {loss_type!r}, {temperature}")
        self.relation = relation
        self.loss_type = loss_type
        self.temperature = float(temperature)
        self.matcher = build_matcher(matcher)
        self.num_queries = num_queries
        self.loss_weight = float(loss_weight)

    def _relations(self, matched: MatchedOutputs, student_feats: Optional[Tensor],
                   teacher_feats: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Student and teacher relations ``(B, K, K)`` of the paired queries."""
        if self.relation == "center_distance":
            return (distance_relation(matched.student_box[..., CODE_X:CODE_Z + 1]),
                    distance_relation(matched.teacher_box[..., CODE_X:CODE_Z + 1].float()))
        if self.relation == "class_cosine":
            return (cosine_relation(matched.student_cls.sigmoid()),
                    cosine_relation(matched.teacher_cls.float().sigmoid()))
        if student_feats is None or teacher_feats is None:
            raise ValueError("OutputRelationLoss(relation='feature_cosine') needs student_feats and "
                             "teacher_feats (B, Q, C)")
        student_feats = take_last_queries(student_feats, self.num_queries, "student_feats")
        teacher_feats = take_last_queries(teacher_feats.detach(), self.num_queries, "teacher_feats")
        if (student_feats.shape[1], teacher_feats.shape[1]) != (matched.pairs.num_student,
                                                                matched.pairs.num_teacher):
            raise ValueError(f"student_feats {tuple(student_feats.shape)} / teacher_feats "
                             f"{tuple(teacher_feats.shape)} must hold the queries of the outputs "
                             f"({matched.pairs.num_student} / {matched.pairs.num_teacher})")
        return (cosine_relation(gather_queries(student_feats, matched.pairs.student_index)),
                cosine_relation(gather_queries(teacher_feats, matched.pairs.teacher_index).float()))

    def forward(self, student_cls: Tensor, student_box: Tensor, teacher_cls: Tensor, teacher_box: Tensor,
                student_feats: Optional[Tensor] = None, teacher_feats: Optional[Tensor] = None) -> Tensor:
        """Relation loss of the matched queries.

        Args:
            student_cls: ``(B, Q_s, C)`` logits; student_box: ``(B, Q_s, 10)`` codes.
            teacher_cls: ``(B, Q_t, C)``; teacher_box: ``(B, Q_t, 10)``.
            student_feats / teacher_feats: ``(B, Q_s, C_s)`` / ``(B, Q_t, C_t)`` query
                features, needed for ``relation='feature_cosine'`` only.

        Returns:
            Weighted scalar loss.
        """
        matched = match_outputs(self.matcher, self.num_queries, student_cls, student_box,
                                teacher_cls, teacher_box)
        student, teacher = self._relations(matched, student_feats, teacher_feats)
        sign = -1.0 if self.relation == "center_distance" else 1.0
        loss = relation_divergence(student, teacher.detach().to(student), matched.teacher_scores.to(student),
                                   self.loss_type, self.temperature, sign)
        return self.loss_weight * loss
