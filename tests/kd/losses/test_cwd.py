"""ChannelWiseDivergence: value, zero at identity, gradients, shapes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from projects.mmdet3d_plugin.kd.losses.bkl import BalancedKLLoss
from projects.mmdet3d_plugin.kd.losses.cwd import ChannelWiseDivergence
from projects.mmdet3d_plugin.registry import MODELS


def _channel_kl(teacher: list[float], student: list[float], tau: float) -> float:
    exp_t = [math.exp(v / tau) for v in teacher]
    exp_s = [math.exp(v / tau) for v in student]
    p_t = [e / sum(exp_t) for e in exp_t]
    p_s = [e / sum(exp_s) for e in exp_s]
    return sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))


def test_value_matches_hand_computation() -> None:
    student = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 0.0, -2.0]]).view(1, 2, 2, 2)
    teacher = torch.tensor([[3.0, -1.0, 0.5, 2.0], [0.0, 2.0, 0.0, 1.0]]).view(1, 2, 2, 2)
    tau, weight = 2.0, 3.0
    per_channel = [
        _channel_kl(teacher[0, c].flatten().tolist(), student[0, c].flatten().tolist(), tau) for c in range(2)
    ]
    expected = weight * sum(per_channel) * tau**2 / (1 * 2)
    loss = ChannelWiseDivergence(tau=tau, loss_weight=weight)(student, teacher)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_equals_forward_balanced_kl() -> None:
    student, teacher = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    cwd = ChannelWiseDivergence(tau=3.0, loss_weight=0.5)(student, teacher)
    bkl = BalancedKLLoss(tau=3.0, loss_weight=0.5, schedule="reverse")(student, teacher, progress=0.0)
    torch.testing.assert_close(cwd, bkl)


def test_identical_inputs_give_zero_and_different_positive() -> None:
    features = torch.randn(2, 4, 3, 5)
    assert ChannelWiseDivergence()(features, features.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert ChannelWiseDivergence()(features, torch.randn(2, 4, 3, 5)).item() > 1e-4


def test_gradient_reaches_student_only() -> None:
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4, 4, requires_grad=True)
    ChannelWiseDivergence()(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_teacher_is_resized_to_student() -> None:
    student, teacher = torch.randn(1, 2, 3, 5), torch.randn(1, 2, 6, 10)
    resized = F.interpolate(teacher, size=(3, 5), mode="bilinear", align_corners=False)
    loss = ChannelWiseDivergence()
    torch.testing.assert_close(loss(student, teacher), loss(student, resized))


def test_channel_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"ChannelWiseDivergence.*\(1, 2, 3, 3\).*\(1, 4, 3, 3\)"):
        ChannelWiseDivergence()(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 3, 3))


def test_built_from_config() -> None:
    loss = MODELS.build(dict(type="ChannelWiseDivergence", tau=1.0, loss_weight=2.0))
    assert (loss.tau, loss.loss_weight) == (1.0, 2.0)
    with pytest.raises(ValueError, match="tau"):
        ChannelWiseDivergence(tau=-1.0)
