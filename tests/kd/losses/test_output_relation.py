"""Relation distillation among matched queries."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.output_relation import (OutputRelationLoss, cosine_relation,
                                                               distance_relation)
from projects.mmdet3d_plugin.kd.losses.query_matching import gather_queries
from projects.mmdet3d_plugin.registry import MODELS


def _outputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    cls = torch.randn(2, 6, 3, generator=gen) * 2
    box = torch.randn(2, 6, 10, generator=gen)
    box[..., :3] = torch.rand(2, 6, 3, generator=gen) * 60 - 30
    return cls, box


def test_relations_on_constructed_points() -> None:
    points = torch.tensor([[[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]])
    mean = (3.0 + 4.0 + 5.0) * 2 / 6
    torch.testing.assert_close(distance_relation(points)[0, 1, 2], torch.tensor(5.0 / mean))
    vectors = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    torch.testing.assert_close(cosine_relation(vectors)[0, 0, 1], torch.tensor(2 ** -0.5))


@pytest.mark.parametrize("relation", ["center_distance", "class_cosine", "feature_cosine"])
@pytest.mark.parametrize("loss_type", ["mse", "kl"])
def test_zero_for_permuted_identical_and_positive_otherwise(relation, loss_type) -> None:
    loss = MODELS.build(dict(type="OutputRelationLoss", relation=relation, loss_type=loss_type))
    teacher_cls, teacher_box = _outputs()
    feats = torch.randn(2, 6, 16)
    perm = torch.tensor([[5, 3, 1, 0, 2, 4], [2, 0, 1, 5, 4, 3]])
    student = [gather_queries(t, perm) for t in (teacher_cls, teacher_box, feats)]
    value = loss(student[0], student[1], teacher_cls, teacher_box, student[2], feats)
    assert value.item() == pytest.approx(0.0, abs=1e-5)
    other_cls, other_box = _outputs(seed=3)
    student_cls, student_box = other_cls.requires_grad_(), other_box.requires_grad_()
    student_feats = torch.randn(2, 6, 8, requires_grad=True)  # channels may differ
    teacher = [t.clone().requires_grad_() for t in (teacher_cls, teacher_box, feats)]
    value = loss(student_cls, student_box, teacher[0], teacher[1], student_feats, teacher[2])
    value.backward()
    assert value.item() > 0
    grads = {"center_distance": student_box, "class_cosine": student_cls, "feature_cosine": student_feats}
    assert grads[relation].grad.abs().sum() > 0
    assert all(t.grad is None for t in teacher)


def test_centre_distance_relation_is_scale_invariant() -> None:
    loss = OutputRelationLoss(relation="center_distance", matcher=dict(center_weight=0.0, cls_weight=1.0))
    teacher_cls, teacher_box = _outputs()
    student_box = teacher_box.clone()
    student_box[..., :3] *= 2.0
    assert loss(teacher_cls, student_box, teacher_cls, teacher_box).item() == pytest.approx(0.0, abs=1e-5)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="relation in"):
        OutputRelationLoss(relation="angle")
    cls, box = _outputs()
    with pytest.raises(ValueError, match="needs student_feats"):
        OutputRelationLoss(relation="feature_cosine")(cls, box, cls, box)
    with pytest.raises(ValueError, match="must hold the queries"):
        OutputRelationLoss(relation="feature_cosine")(cls, box, cls, box, torch.zeros(2, 5, 4), torch.zeros(2, 6, 4))
