"""Query–image attention distillation on matched teacher–student queries.

For a dense cross-attention decoder (StreamPETR) every query holds a distribution over the
image tokens, the head-averaged attention map ``A (B, Q, K)``. The student's queries are
paired with the teacher's by :class:`~.query_matching.QueryMatcher` **inside the loss**,
from the heads' class logits and box codes (so the loss takes those taps too); for each
pair the teacher's attention row is distilled into the student's::

    p = softmax(log(A) / T)            (= A^(1/T), renormalised; A itself for T = 1)
    loss = loss_weight * T^2 * sum_k w_k KL(p_T[k] || p_S[k]) / sum_k w_k

with ``w_k`` the teacher's confidence (max sigmoid score) of pair ``k``, or 1 when
``weight_by_score=False``.

**Tokens.** Student and teacher must attend the same ``K`` tokens in the same order: the
same cameras, input resolution and feature stride (R18/R34/R50 students and teachers of
this project all use the stride-16 level), and no per-model token selection (the 2D head's
``topk_indexes``). A different ``K`` raises; the maps are not resized.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS
from .query_matching import build_matcher, gather_queries, match_outputs, take_last_queries

_LOG_EPS = 1e-12


def attention_kl(student_attn: Tensor, teacher_attn: Tensor, temperature: float) -> Tensor:
    """``KL(p_T || p_S) * T^2`` per row, ``(B, K)``, of attention rows ``(B, K, N_tokens)``."""
    log_p_s = F.log_softmax(student_attn.clamp(min=_LOG_EPS).log() / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_attn.clamp(min=_LOG_EPS).log() / temperature, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1) * temperature ** 2


@MODELS.register_module()
class QueryAttentionLoss(nn.Module):
    """KL between the attention maps of matched student and teacher queries.

    Args:
        temperature: ``T`` (see the module docstring).
        weight_by_score: weight every pair by the teacher's confidence.
        matcher: :class:`~.query_matching.QueryMatcher` arguments (None: defaults).
        num_queries: keep the last ``num_queries`` queries of every input (drops the DN
            queries in front of the student's while training); None keeps all.
        loss_weight: factor on the loss.
    """

    def __init__(self, temperature: float = 1.0, weight_by_score: bool = True,
                 matcher: Optional[dict] = None, num_queries: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"QueryAttentionLoss: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.weight_by_score = weight_by_score
        self.matcher = build_matcher(matcher)
        self.num_queries = num_queries
        self.loss_weight = float(loss_weight)

    def forward(self, student_attn: Tensor, teacher_attn: Tensor, student_cls: Tensor,
                student_box: Tensor, teacher_cls: Tensor, teacher_box: Tensor) -> Tensor:
        """Attention distillation of the matched queries.

        Args:
            student_attn: ``(B, Q_s, K)`` head-averaged cross-attention map (rows sum to 1).
            teacher_attn: ``(B, Q_t, K)``.
            student_cls: ``(B, Q_s, C)`` logits; student_box: ``(B, Q_s, 10)`` box codes with
                metric centres; teacher_cls / teacher_box likewise for the teacher.

        Returns:
            Weighted scalar loss.
        """
        if student_attn.dim() != 3 or teacher_attn.dim() != 3 or \
                student_attn.shape[2] != teacher_attn.shape[2]:
            raise ValueError(f"QueryAttentionLoss needs (B, Q, K) maps over the same K image tokens, got "
                             f"student_attn {tuple(student_attn.shape)}, teacher_attn "
                             f"{tuple(teacher_attn.shape)} (resolutions or token selection differ?)")
        student_attn = take_last_queries(student_attn, self.num_queries, "student_attn")
        teacher_attn = take_last_queries(teacher_attn.detach(), self.num_queries, "teacher_attn")
        matched = match_outputs(self.matcher, self.num_queries, student_cls, student_box,
                                teacher_cls, teacher_box)
        expected = (matched.pairs.num_student, matched.pairs.num_teacher)
        if (student_attn.shape[1], teacher_attn.shape[1]) != expected:
            raise ValueError(f"QueryAttentionLoss: attention maps {tuple(student_attn.shape)} / "
                             f"{tuple(teacher_attn.shape)} and class logits {tuple(student_cls.shape)} / "
                             f"{tuple(teacher_cls.shape)} must hold the same queries")
        rows = attention_kl(gather_queries(student_attn, matched.pairs.student_index),
                            gather_queries(teacher_attn, matched.pairs.teacher_index).to(student_attn),
                            self.temperature)
        weights = matched.teacher_scores.to(rows) if self.weight_by_score else torch.ones_like(rows)
        return self.loss_weight * (weights * rows).sum() / weights.sum().clamp(min=1e-6)

