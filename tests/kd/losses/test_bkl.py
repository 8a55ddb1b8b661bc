"""BalancedKLLoss: values by hand, schedule, teacher temperature, gradients, shapes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from projects.mmdet3d_plugin.kd.losses.bkl import BalancedKLLoss
from projects.mmdet3d_plugin.registry import MODELS


def _softmax(values: list[float], tau: float) -> list[float]:
    exps = [math.exp(v / tau) for v in values]
    return [e / sum(exps) for e in exps]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


STUDENT = [0.0, 1.0, 2.0, 3.0]
TEACHER = [3.0, -1.0, 0.5, 2.0]


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(STUDENT).view(1, 1, 2, 2), torch.tensor(TEACHER).view(1, 1, 2, 2)


@pytest.mark.parametrize("schedule", ["released", "reverse", "none"])
@pytest.mark.parametrize("progress", [0.0, 0.5, 1.0])
def test_value_matches_hand_computation(progress: float, schedule: str) -> None:
    tau, r, weight = 2.0, 7.0, 0.1
    p_s, p_t = _softmax(STUDENT, tau), _softmax(TEACHER, tau)
    forward, reverse = _kl(p_t, p_s), _kl(p_s, p_t)
    # N = C = 1. The released HarmoDistill loss puts r on both scheduled terms.
    expected_kl = {
        "released": r * ((1 - progress) * forward + progress * reverse),
        "reverse": (1 - progress) * forward + progress * r * reverse,
        "none": forward + r * reverse,
    }[schedule]
    loss = BalancedKLLoss(tau=tau, reverse_weight=r, loss_weight=weight, schedule=schedule)
    assert loss(*_pair(), progress=progress).item() == pytest.approx(weight * expected_kl * tau**2, rel=1e-5)


def test_released_default_is_r_times_the_reverse_only_variant_at_the_start() -> None:
    student, teacher = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    released = BalancedKLLoss()(student, teacher, progress=0.0)
    reverse_only = BalancedKLLoss(schedule="reverse")(student, teacher, progress=0.0)
    assert (released / reverse_only).item() == pytest.approx(7.0, rel=1e-5)
    end = [BalancedKLLoss(schedule=s)(student, teacher, progress=1.0) for s in ("released", "reverse")]
    torch.testing.assert_close(end[0], end[1])


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="schedule must be one of"):
        BalancedKLLoss(schedule="forward")


def test_progress_interpolates_linearly() -> None:
    loss = BalancedKLLoss()
    student, teacher = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    start, end = loss(student, teacher, progress=0.0), loss(student, teacher, progress=1.0)
    mid = loss(student, teacher, progress=0.25)
    torch.testing.assert_close(mid, 0.75 * start + 0.25 * end)


def test_teacher_tau_is_applied_to_the_teacher() -> None:
    tau, teacher_tau = 2.0, 0.5
    p_s, p_t = _softmax(STUDENT, tau), _softmax(TEACHER, teacher_tau)
    expected = 0.1 * 7.0 * _kl(p_t, p_s) * tau**2
    sharp = BalancedKLLoss(tau=tau, teacher_tau=teacher_tau)(*_pair(), progress=0.0)
    same = BalancedKLLoss(tau=tau)(*_pair(), progress=0.0)
    explicit_same = BalancedKLLoss(tau=tau, teacher_tau=tau)(*_pair(), progress=0.0)
    assert sharp.item() == pytest.approx(expected, rel=1e-5)
    assert sharp.item() != pytest.approx(same.item(), rel=1e-3)
    torch.testing.assert_close(same, explicit_same)


@pytest.mark.parametrize("progress", [0.0, 0.5, 1.0])
def test_identical_inputs_give_zero(progress: float) -> None:
    features = torch.randn(2, 4, 3, 5)
    loss = BalancedKLLoss()(features, features.clone(), progress=progress)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("progress", [0.0, 0.5, 1.0])
def test_different_inputs_give_positive_loss(progress: float) -> None:
    loss = BalancedKLLoss()(torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5), progress=progress)
    assert loss.item() > 1e-4


def test_gradient_reaches_student_only() -> None:
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4, 4, requires_grad=True)
    BalancedKLLoss()(student, teacher, progress=0.3).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_teacher_is_resized_to_student() -> None:
    student, teacher = torch.randn(2, 3, 4, 6), torch.randn(2, 3, 8, 12)
    resized = F.interpolate(teacher, size=(4, 6), mode="bilinear", align_corners=False)
    loss = BalancedKLLoss()
    torch.testing.assert_close(loss(student, teacher, progress=0.4), loss(student, resized, progress=0.4))


def test_channel_mismatch_is_an_error_naming_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"BalancedKLLoss.*\(2, 3, 4, 4\).*\(2, 8, 4, 4\)"):
        BalancedKLLoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 8, 4, 4))


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="progress"):
        BalancedKLLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), progress=1.5)
    with pytest.raises(ValueError, match="teacher_tau"):
        BalancedKLLoss(teacher_tau=0.0)


def test_built_from_config_with_defaults() -> None:
    loss = MODELS.build(dict(type="BalancedKLLoss", loss_weight=0.01))
    assert isinstance(loss, BalancedKLLoss)
    assert (loss.tau, loss.teacher_tau, loss.reverse_weight, loss.loss_weight) == (4.0, 4.0, 7.0, 0.01)
