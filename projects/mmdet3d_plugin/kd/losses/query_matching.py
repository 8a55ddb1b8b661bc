"""Teacher–student query pairing for the query distillation losses.

Teacher and student decoders produce unordered sets of queries: query ``i`` of the student
has no reason to describe the same object as query ``i`` of the teacher (upstream
HarmoDistill aligns them by index; we do not). :class:`QueryMatcher` pairs them one-to-one
with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on the cost

    cost[s, t] = center_weight * |c_s - c_t|_1 + cls_weight * |sigmoid(z_s) - sigmoid(z_t)|_1

where ``c`` are the predicted box centres in metres (box-code slots ``cx, cy, cz``) and
``z`` the class logits (sigmoid classification, as the heads are trained with focal loss).
The cost is computed without gradient; the pairs are integer indices.

With ``num_pairs = K`` only the teacher's ``K`` most confident queries (max sigmoid score)
are paired, so the losses concentrate on what the teacher detects; otherwise
``K = min(Q_s, Q_t)``.

Query heads put their denoising (DN) queries **in front** of the matching queries while
training; :func:`take_last_queries` drops them by keeping the last ``num_queries`` queries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ...core.bbox.box_layout import CODE_X, CODE_Z
from ...registry import TASK_UTILS


@dataclass
class QueryPairs:
    """One-to-one pairs of a batch.

    Attributes:
        student_index: ``(B, K)`` int64 student query of each pair.
        teacher_index: ``(B, K)`` int64 teacher query of each pair, ordered by decreasing
            teacher confidence when ``num_pairs`` is set, else by teacher index.
        num_student / num_teacher: queries ``Q_s`` / ``Q_t`` the indices refer to.
    """

    student_index: Tensor
    teacher_index: Tensor
    num_student: int
    num_teacher: int

    @property
    def num_pairs(self) -> int:
        """``K``."""
        return int(self.student_index.shape[1])


def take_last_queries(tensor: Tensor, num_queries: Optional[int], name: str) -> Tensor:
    """Keep the last ``num_queries`` queries (dimension 1); DN queries sit in front.

    Args:
        tensor: ``(B, Q, ...)``.
        num_queries: queries to keep, or None to keep all.
        name: the argument's name, for the error message.

    Returns:
        ``(B, num_queries, ...)`` (a view), or ``tensor`` unchanged.
    """
    if num_queries is None:
        return tensor
    if tensor.dim() < 2 or tensor.shape[1] < num_queries:
        raise ValueError(f"{name} of shape {tuple(tensor.shape)} has fewer than "
                         f"num_queries={num_queries} queries in dimension 1")
    return tensor[:, tensor.shape[1] - num_queries:]


def gather_queries(tensor: Tensor, index: Tensor) -> Tensor:
    """``out[b, k] = tensor[b, index[b, k]]`` for ``tensor (B, Q, ...)``, ``index (B, K)``."""
    expanded = index.reshape(*index.shape, *([1] * (tensor.dim() - 2)))
    return torch.gather(tensor, 1, expanded.expand(*index.shape, *tensor.shape[2:]))


def check_query_outputs(cls: Tensor, box: Tensor, side: str) -> None:
    """Raise unless ``cls`` is ``(B, Q, C)`` and ``box`` is ``(B, Q, >=3)`` with the same B, Q."""
    if cls.dim() != 3 or box.dim() != 3 or cls.shape[:2] != box.shape[:2] or box.shape[-1] < 3:
        raise ValueError(f"{side}_cls must be (B, Q, C) and {side}_box (B, Q, 10) with the same "
                         f"B and Q; got {tuple(cls.shape)} and {tuple(box.shape)}")


@TASK_UTILS.register_module()
class QueryMatcher:
    """Hungarian pairing of student and teacher queries (see the module docstring).

    Args:
        center_weight: weight of the centre L1 distance (metres).
        cls_weight: weight of the L1 distance between the sigmoid class probabilities.
        num_pairs: pair only the teacher's ``num_pairs`` most confident queries; None pairs
            ``min(Q_s, Q_t)`` queries.
    """

    def __init__(self, center_weight: float = 1.0, cls_weight: float = 1.0,
                 num_pairs: Optional[int] = None) -> None:
        if center_weight < 0 or cls_weight < 0 or center_weight + cls_weight == 0:
            raise ValueError(f"QueryMatcher needs non-negative weights, not both zero; got "
                             f"center_weight={center_weight}, cls_weight={cls_weight}")
        if num_pairs is not None and num_pairs <= 0:
            raise ValueError(f"QueryMatcher num_pairs must be positive or None, got {num_pairs}")
        self.center_weight = float(center_weight)
        self.cls_weight = float(cls_weight)
        self.num_pairs = num_pairs

    def cost(self, student_cls: Tensor, student_box: Tensor, teacher_cls: Tensor,
             teacher_box: Tensor) -> Tensor:
        """Pairing cost ``(B, Q_s, Q_t)`` from logits ``(B, Q, C)`` and box codes ``(B, Q, 10)``."""
        centers_s = student_box[..., CODE_X:CODE_Z + 1].float()
        centers_t = teacher_box[..., CODE_X:CODE_Z + 1].float()
        cost = self.center_weight * torch.cdist(centers_s, centers_t, p=1)
        if self.cls_weight > 0:
            probs_s, probs_t = student_cls.float().sigmoid(), teacher_cls.float().sigmoid()
            cost = cost + self.cls_weight * torch.cdist(probs_s, probs_t, p=1)
        return cost

    @torch.no_grad()
    def __call__(self, student_cls: Tensor, student_box: Tensor, teacher_cls: Tensor,
                 teacher_box: Tensor) -> QueryPairs:
        """Pair the queries of every sample.

        Args:
            student_cls: ``(B, Q_s, C)`` logits; student_box: ``(B, Q_s, 10)`` box codes with
                metric centres.
            teacher_cls: ``(B, Q_t, C)``; teacher_box: ``(B, Q_t, 10)``.

        Returns:
            :class:`QueryPairs` with ``K = min(num_pairs or Q_t, Q_t, Q_s)`` pairs per sample.
        """
        check_query_outputs(student_cls, student_box, "student")
        check_query_outputs(teacher_cls, teacher_box, "teacher")
        if student_cls.shape[0] != teacher_cls.shape[0] or student_cls.shape[2] != teacher_cls.shape[2]:
            raise ValueError(f"student_cls {tuple(student_cls.shape)} and teacher_cls "
                             f"{tuple(teacher_cls.shape)} must agree in batch size and classes")
        num_teacher = teacher_cls.shape[1]
        keep = min(self.num_pairs or num_teacher, num_teacher, student_cls.shape[1])
        scores = teacher_cls.float().sigmoid().amax(dim=-1)
        if keep < num_teacher:
            teacher_keep = scores.topk(keep, dim=1).indices
        else:
            teacher_keep = torch.arange(num_teacher, device=scores.device).expand(scores.shape[0], -1)
        cost = self.cost(student_cls, student_box, gather_queries(teacher_cls, teacher_keep),
                         gather_queries(teacher_box, teacher_keep))
        return QueryPairs(student_index=_solve(cost, keep), teacher_index=teacher_keep,
                          num_student=int(student_cls.shape[1]), num_teacher=int(num_teacher))


def _solve(cost: Tensor, keep: int) -> Tensor:
    """Student query assigned to each kept teacher query, ``(B, K)``, from ``cost (B, Q_s, K)``."""
    from scipy.optimize import linear_sum_assignment  # imported here: keeps package import fast

    device = cost.device
    cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6).cpu().numpy()
    student_index = torch.empty(cost.shape[0], keep, dtype=torch.long)
    for sample, sample_cost in enumerate(cost):
        rows, cols = linear_sum_assignment(sample_cost)
        student_index[sample, torch.as_tensor(cols)] = torch.as_tensor(rows, dtype=torch.long)
    return student_index.to(device)


@dataclass
class MatchedOutputs:
    """Outputs of the paired queries, ``K`` per sample.

    Attributes:
        pairs: the pairing (indices into the queries kept by ``num_queries``).
        student_cls: ``(B, K, C)`` logits; student_box: ``(B, K, 10)`` codes (with gradient).
        teacher_cls: ``(B, K, C)``; teacher_box: ``(B, K, 10)`` (detached).
        teacher_scores: ``(B, K)`` teacher confidence, max sigmoid class score (detached).
    """

    pairs: QueryPairs
    student_cls: Tensor
    student_box: Tensor
    teacher_cls: Tensor
    teacher_box: Tensor
    teacher_scores: Tensor


def match_outputs(matcher: QueryMatcher, num_queries: Optional[int], student_cls: Tensor,
                  student_box: Tensor, teacher_cls: Tensor, teacher_box: Tensor) -> MatchedOutputs:
    """Drop leading (DN) queries, pair student and teacher queries, gather both sides.

    Args:
        matcher: the pairing.
        num_queries: keep the last ``num_queries`` queries of each tensor (None: all).
        student_cls: ``(B, Q_s, C)``; student_box: ``(B, Q_s, 10)``.
        teacher_cls: ``(B, Q_t, C)``; teacher_box: ``(B, Q_t, 10)``.
    """
    student_cls = take_last_queries(student_cls, num_queries, "student_cls")
    student_box = take_last_queries(student_box, num_queries, "student_box")
    teacher_cls = take_last_queries(teacher_cls.detach(), num_queries, "teacher_cls")
    teacher_box = take_last_queries(teacher_box.detach(), num_queries, "teacher_box")
    pairs = matcher(student_cls.detach(), student_box.detach(), teacher_cls, teacher_box)
    teacher_cls = gather_queries(teacher_cls, pairs.teacher_index)
    return MatchedOutputs(
        pairs=pairs,
        student_cls=gather_queries(student_cls, pairs.student_index),
        student_box=gather_queries(student_box, pairs.student_index),
        teacher_cls=teacher_cls,
        teacher_box=gather_queries(teacher_box, pairs.teacher_index),
        teacher_scores=teacher_cls.float().sigmoid().amax(dim=-1),
    )


def build_matcher(matcher: Optional[dict]) -> QueryMatcher:
    """A :class:`QueryMatcher` from its arguments (None: the defaults)."""
    return QueryMatcher(**({} if matcher is None else dict(matcher)))
