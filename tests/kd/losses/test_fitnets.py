"""FitNetsLoss on feature maps and on query tokens."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from projects.mmdet3d_plugin.kd.losses.fitnets import FitNetsLoss
from projects.mmdet3d_plugin.registry import MODELS


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 7, 8), (5, 8)])
def test_value_is_weighted_mean_squared_error(shape: tuple[int, ...]) -> None:
    student, teacher = torch.randn(shape), torch.randn(shape)
    expected = 0.5 * ((student - teacher) ** 2).sum() / student.numel()
    torch.testing.assert_close(FitNetsLoss(loss_weight=0.5)(student, teacher), expected)


def test_hand_value() -> None:
    student = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    teacher = torch.tensor([[[1.0, 0.0], [3.0, 5.0]]])
    assert FitNetsLoss(loss_weight=2.0)(student, teacher).item() == pytest.approx(2.0 * (4.0 + 1.0) / 4)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 7, 8)])
def test_identical_zero_and_gradient_to_student_only(shape: tuple[int, ...]) -> None:
    features = torch.randn(shape)
    assert FitNetsLoss()(features, features.clone()).item() == 0.0
    student = torch.randn(shape, requires_grad=True)
    teacher = torch.randn(shape, requires_grad=True)
    loss = FitNetsLoss()(student, teacher)
    assert loss.item() > 0
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_feature_map_teacher_is_resized() -> None:
    student, teacher = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 8, 10)
    resized = F.interpolate(teacher, size=(4, 5), mode="bilinear", align_corners=False)
    torch.testing.assert_close(FitNetsLoss()(student, teacher), FitNetsLoss()(student, resized))


def test_mismatches_are_errors_naming_shapes() -> None:
    with pytest.raises(ValueError, match=r"FitNetsLoss.*\(2, 3, 4, 4\).*\(2, 6, 4, 4\)"):
        FitNetsLoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 6, 4, 4))
    with pytest.raises(ValueError, match=r"FitNetsLoss.*\(2, 7, 8\).*\(2, 7, 16\)"):
        FitNetsLoss()(torch.zeros(2, 7, 8), torch.zeros(2, 7, 16))
    with pytest.raises(ValueError, match=r"\(2, 7, 8\).*\(2, 9, 8\)"):
        FitNetsLoss()(torch.zeros(2, 7, 8), torch.zeros(2, 9, 8))


def test_built_from_config() -> None:
    assert MODELS.build(dict(type="FitNetsLoss", loss_weight=3.0)).loss_weight == 3.0


def test_num_queries_drops_the_students_leading_dn_queries() -> None:
    teacher = torch.randn(2, 6, 8)
    dn = torch.randn(2, 4, 8) * 10
    student = torch.cat([dn, teacher.clone()], dim=1).requires_grad_()
    loss = FitNetsLoss(num_queries=6)(student, teacher)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    shifted = torch.cat([dn, teacher + 1.0], dim=1)
    assert FitNetsLoss(num_queries=6)(shifted, teacher).item() == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="shape"):
        FitNetsLoss()(student, teacher)


def test_num_queries_is_checked() -> None:
    with pytest.raises(ValueError, match="num_queries"):
        FitNetsLoss(num_queries=0)
    with pytest.raises(ValueError, match="query tokens"):
        FitNetsLoss(num_queries=4)(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="fewer than"):
        FitNetsLoss(num_queries=9)(torch.randn(2, 8, 4), torch.randn(2, 8, 4))
