"""Objectness-scaled output distillation on matched queries."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.output_distill import OutputDistillLoss, sigmoid_kl
from projects.mmdet3d_plugin.kd.losses.query_matching import gather_queries
from projects.mmdet3d_plugin.registry import MODELS


def _outputs(seed: int = 0, queries: int = 5):
    gen = torch.Generator().manual_seed(seed)
    cls = torch.randn(2, queries, 3, generator=gen) * 2
    box = torch.randn(2, queries, 10, generator=gen) * 0.3
    box[..., :3] = torch.rand(2, queries, 3, generator=gen) * 60 - 30
    return cls, box


def test_sigmoid_kl_matches_the_binary_kl_formula() -> None:
    student, teacher = torch.tensor([[0.3, -1.0]]), torch.tensor([[1.2, 0.4]])
    p_s, p_t = (student / 2).sigmoid(), (teacher / 2).sigmoid()
    expected = (p_t * (p_t / p_s).log() + (1 - p_t) * ((1 - p_t) / (1 - p_s)).log()).sum(-1) * 4
    torch.testing.assert_close(sigmoid_kl(student, teacher, 2.0), expected)


def test_zero_for_permuted_identical_outputs_which_index_order_would_miss() -> None:
    loss = MODELS.build(dict(type="OutputDistillLoss", giou_weight=1.0))
    teacher_cls, teacher_box = _outputs()
    perm = torch.tensor([[4, 2, 0, 1, 3], [1, 0, 4, 3, 2]])
    student_cls, student_box = gather_queries(teacher_cls, perm), gather_queries(teacher_box, perm)
    assert loss(student_cls, student_box, teacher_cls, teacher_box).item() == pytest.approx(0.0, abs=1e-5)
    by_index = loss.pair_losses(student_cls, student_box, teacher_cls, teacher_box)
    assert by_index.mean().item() > 1.0


def test_value_of_one_pair_is_weighted_kl_plus_code_l1_and_giou() -> None:
    loss = OutputDistillLoss(temperature=1.0, cls_weight=1.0, box_weight=0.5, giou_weight=2.0, loss_weight=3.0)
    teacher_cls, student_cls = torch.tensor([[[2.0]]]), torch.tensor([[[0.0]]])
    teacher_box = torch.tensor([[[0.0, 0.0, 0.0, math.log(2.0), math.log(2.0), 0.0, 0.0, 1.0, 0.0, 0.0]]])
    student_box = teacher_box.clone()
    student_box[0, 0, 0] = 1.0   # shifted by 1 m in x: L1 1, BEV boxes [-1,1]^2 vs [0,2]x[-1,1]
    student_box[0, 0, 8] = 1.0   # velocity, code weight 0.2
    p = torch.tensor(2.0).sigmoid()
    kl = p * (p / 0.5).log() + (1 - p) * ((1 - p) / 0.5).log()
    giou = 2.0 / 6.0 - 0.0  # intersection 2, union 6, hull 6
    expected = 3.0 * (kl + 0.5 * (1.0 + 0.2) + 2.0 * (1 - giou))
    torch.testing.assert_close(loss(student_cls, student_box, teacher_cls, teacher_box), expected)


def test_confident_teacher_pairs_dominate() -> None:
    """Pairs are weighted by the teacher's max sigmoid score, normalised by their sum."""
    loss = OutputDistillLoss(cls_weight=0.0, matcher=dict(cls_weight=0.0))
    teacher_cls = torch.tensor([[[4.0], [-4.0]]])
    teacher_box = torch.zeros(1, 2, 10)
    teacher_box[0, 1, 0] = 50.0
    student_box = teacher_box.clone()
    student_box[0, 0, 1] = 1.0   # error 1 on the confident query
    student_box[0, 1, 1] = 3.0   # error 3 on the background query
    scores = teacher_cls.sigmoid()[0, :, 0]
    expected = (scores[0] * 1.0 + scores[1] * 3.0) / scores.sum()
    torch.testing.assert_close(loss(teacher_cls.clone(), student_box, teacher_cls, teacher_box), expected)


def test_positive_for_different_outputs_and_gradient_reaches_the_student_only() -> None:
    loss = OutputDistillLoss(giou_weight=1.0, num_queries=5)
    teacher_cls, teacher_box = _outputs()
    student_cls, student_box = _outputs(seed=1, queries=8)
    student_cls.requires_grad_(), student_box.requires_grad_()
    teacher_cls.requires_grad_(), teacher_box.requires_grad_()
    value = loss(student_cls, student_box, teacher_cls, teacher_box)
    value.backward()
    assert value.item() > 0
    assert student_cls.grad[:, 3:].abs().sum() > 0 and student_box.grad[:, 3:].abs().sum() > 0
    assert student_cls.grad[:, :3].abs().sum() == 0  # leading (DN) queries dropped
    assert teacher_cls.grad is None and teacher_box.grad is None


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="code_weights"):
        OutputDistillLoss(code_weights=[1.0] * 9)
    cls, box = _outputs()
    with pytest.raises(ValueError, match="box codes"):
        OutputDistillLoss()(cls, box[..., :9], cls, box[..., :9])
