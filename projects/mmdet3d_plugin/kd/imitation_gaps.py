"""How far a student is from its teacher, per distillation family (smaller is closer).

A distillation loss that works reduces the gap it is about. These measures are independent
of the losses' own formulas, so they can judge them:

* **features**: ``1 - cos`` of channel-centred feature maps (:func:`feature_gap`): the
  balanced KL and CWD compare per-channel spatial softmaxes, which ignore a constant per
  channel, so the constant is removed on both sides before the cosine;
* **outputs**: on Hungarian-matched queries (the teacher's most confident ones), the centre
  distance in metres and the mean absolute difference of the class probabilities
  (:func:`output_gap`);
* **query field**: the symmetric Chamfer distance in metres between the BEV positions where
  the two decoders sample (:func:`point_set_gap`);
* **BEV features**: the feature gap of the two FPN levels lifted onto the BEV grid by the
  same parameter-free lifting as the BEV loss (:func:`bev_gap`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .bev.lifting import BEVLifting
from .losses.feature_utils import prepare_feature_pair
from .losses.query_matching import QueryMatcher, match_outputs, take_last_queries


@torch.no_grad()
def feature_gap(student: Tensor, teacher: Tensor) -> float:
    """``1 - cos`` of channel-centred maps, averaged over samples and channels.

    Args:
        student: ``(N, C, H, W)``; teacher: ``(N, C, H_t, W_t)`` (resized to the student's).
    """
    student, teacher = prepare_feature_pair(student, teacher, "feature_gap")
    student = student.flatten(2) - student.flatten(2).mean(-1, keepdim=True)
    teacher = teacher.flatten(2) - teacher.flatten(2).mean(-1, keepdim=True)
    return float(1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8).mean())


@torch.no_grad()
def bev_gap(student: Tensor, teacher: Tensor, lifting: BEVLifting, lidar2img: Tensor,
            pad_shape: Sequence[Sequence[int]]) -> float:
    """:func:`feature_gap` of the lifted maps ``lifting(student)`` and ``lifting(teacher)``.

    Args:
        student: ``(B * N, C, H, W)`` camera feature maps; teacher: ``(B * N, C, H_t, W_t)``.
        lifting: the lifting onto the BEV grid; lidar2img: ``(B, N, 4, 4)``; pad_shape: B pairs
            ``(H_img, W_img)``.
    """
    return feature_gap(lifting(student, lidar2img, pad_shape), lifting(teacher, lidar2img, pad_shape))


@torch.no_grad()
def output_gap(student_cls: Tensor, student_box: Tensor, teacher_cls: Tensor, teacher_box: Tensor,
               num_queries: Optional[int] = None, num_pairs: int = 20) -> dict[str, float]:
    """Matched-query output errors.

    Args:
        student_cls: ``(B, Q_s, C)`` logits; student_box: ``(B, Q_s, 10)`` codes, metric centres.
        teacher_cls / teacher_box: likewise ``(B, Q_t, ...)``.
        num_queries: keep the last ``num_queries`` queries (drops DN queries).
        num_pairs: pair the teacher's ``num_pairs`` most confident queries.

    Returns:
        ``center_m``: mean centre distance (metres); ``class_prob``: mean ``|p_S - p_T|`` over
        classes.
    """
    matched = match_outputs(QueryMatcher(num_pairs=num_pairs), num_queries, student_cls, student_box,
                            teacher_cls, teacher_box)
    center = (matched.student_box[..., :3] - matched.teacher_box[..., :3]).norm(dim=-1).mean()
    probs = (matched.student_cls.sigmoid() - matched.teacher_cls.sigmoid()).abs().mean()
    return dict(center_m=float(center), class_prob=float(probs))


@torch.no_grad()
def point_set_gap(student_points: Tensor, teacher_points: Tensor, num_queries: Optional[int] = None) -> float:
    """Symmetric Chamfer distance (metres, BEV ``x, y``) between sampled locations.

    Args:
        student_points: ``(B, Q_s, P, 3)`` or ``(B, Q_s, 3)`` metric locations.
        teacher_points: likewise for the teacher.
        num_queries: keep the last ``num_queries`` queries of both (drops DN queries).

    Returns:
        ``(mean nearest-teacher distance of the student points + the converse) / 2``.
    """
    student = take_last_queries(student_points, num_queries, "student_points")
    teacher = take_last_queries(teacher_points, num_queries, "teacher_points")
    student = student.reshape(student.shape[0], -1, student.shape[-1])[..., :2].float()
    teacher = teacher.reshape(teacher.shape[0], -1, teacher.shape[-1])[..., :2].float()
    distance = torch.cdist(student, teacher)
    return float((distance.amin(dim=2).mean() + distance.amin(dim=1).mean()) / 2)
