"""Shared checks and helpers of the feature-map distillation losses."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from projects.mmdet3d_plugin.kd.losses.feature_utils import (
    check_feature_maps,
    check_non_negative,
    check_positive,
    kl_divergence_sum,
    prepare_feature_pair,
    resize_to,
    spatial_log_softmax,
)


def test_prepare_resizes_teacher_bilinearly_and_detaches() -> None:
    student = torch.randn(2, 3, 4, 5, requires_grad=True)
    teacher = torch.randn(2, 3, 8, 10, requires_grad=True)
    out_s, out_t = prepare_feature_pair(student, teacher, "Loss")
    expected = F.interpolate(teacher.detach(), size=(4, 5), mode="bilinear", align_corners=False)
    assert out_t.shape == (2, 3, 4, 5)
    torch.testing.assert_close(out_t, expected)
    assert not out_t.requires_grad
    assert out_s.requires_grad


def test_prepare_keeps_same_size_teacher_and_upcasts_half() -> None:
    student = torch.randn(1, 2, 3, 3).half()
    teacher = torch.randn(1, 2, 3, 3).half()
    out_s, out_t = prepare_feature_pair(student, teacher, "Loss")
    assert out_s.dtype == torch.float32 and out_t.dtype == torch.float32
    torch.testing.assert_close(out_t, teacher.float())


def test_resize_to_is_noop_for_equal_size() -> None:
    features = torch.randn(1, 2, 3, 4)
    assert resize_to(features, (3, 4)) is features


def test_channel_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"MyLoss.*\(2, 3, 4, 4\).*\(2, 5, 4, 4\).*adapter"):
        check_feature_maps(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 4, 4), "MyLoss")


def test_batch_mismatch_and_wrong_rank_are_errors() -> None:
    with pytest.raises(ValueError, match="batch"):
        check_feature_maps(torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4), "MyLoss")
    with pytest.raises(ValueError, match=r"\(B\*N, C, H, W\)"):
        check_feature_maps(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "MyLoss")


def test_spatial_log_softmax_is_per_channel_distribution() -> None:
    features = torch.randn(2, 3, 4, 5)
    log_p = spatial_log_softmax(features, tau=2.0)
    assert log_p.shape == (2, 3, 20)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(log_p, torch.log_softmax(features.view(2, 3, 20) / 2.0, dim=-1))


def test_kl_divergence_sum_matches_definition() -> None:
    p = torch.tensor([[[0.2, 0.8]], [[0.5, 0.5]]])
    q = torch.tensor([[[0.6, 0.4]], [[0.9, 0.1]]])
    expected = sum(
        pi * math.log(pi / qi)
        for pr, qr in zip(p.flatten(0, 1).tolist(), q.flatten(0, 1).tolist())
        for pi, qi in zip(pr, qr)
    )
    assert kl_divergence_sum(p.log(), q.log()).item() == pytest.approx(expected, rel=1e-5)
    assert kl_divergence_sum(p.log(), p.log()).item() == pytest.approx(0.0, abs=1e-7)


def test_scalar_argument_checks() -> None:
    assert check_positive(2, "tau", "L") == 2.0
    assert check_non_negative(0, "loss_weight", "L") == 0.0
    with pytest.raises(ValueError, match="L: tau must be > 0"):
        check_positive(0.0, "tau", "L")
    with pytest.raises(ValueError, match="L: loss_weight must be >= 0"):
        check_non_negative(-1.0, "loss_weight", "L")
