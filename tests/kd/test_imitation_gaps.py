"""The teacher-student gap measures of kd/imitation_gaps.py: zero when equal, growing apart."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.imitation_gaps import feature_gap, output_gap, point_set_gap


def test_feature_gap_ignores_per_channel_constants_and_grows_with_noise() -> None:
    teacher = torch.randn(2, 4, 6, 8)
    shifted = teacher + torch.randn(1, 4, 1, 1) * 5
    assert feature_gap(shifted, teacher) == pytest.approx(0.0, abs=1e-5)
    gaps = [feature_gap(teacher + s * torch.randn_like(teacher), teacher) for s in (0.1, 1.0, 10.0)]
    assert 0 < gaps[0] < gaps[1] < gaps[2] <= 2.0
    # A teacher map of another size is resized to the student's.
    assert feature_gap(teacher, torch.nn.functional.interpolate(teacher, size=(12, 16))) < 0.1


def test_output_gap_pairs_queries_whatever_their_order() -> None:
    gen = torch.Generator().manual_seed(0)
    cls, box = torch.randn(1, 10, 3, generator=gen), torch.randn(1, 10, 10, generator=gen) * 5
    perm = torch.randperm(10, generator=gen)
    same = output_gap(cls[:, perm], box[:, perm], cls, box, num_pairs=4)
    assert same["center_m"] == pytest.approx(0.0, abs=1e-6) and same["class_prob"] == pytest.approx(0.0, abs=1e-6)
    moved = box.clone()
    moved[..., 0] += 2.0
    assert output_gap(cls, moved, cls, box, num_pairs=10)["center_m"] == pytest.approx(2.0, rel=1e-4)


def test_output_gap_drops_leading_dn_queries() -> None:
    cls, box = torch.randn(2, 6, 3), torch.randn(2, 6, 10)
    dn_cls, dn_box = torch.randn(2, 4, 3) * 9, torch.randn(2, 4, 10) * 9
    gap = output_gap(torch.cat([dn_cls, cls], 1), torch.cat([dn_box, box], 1), cls, box, num_queries=6)
    assert gap["center_m"] == pytest.approx(0.0, abs=1e-6)


def test_point_set_gap_is_the_offset_of_a_shifted_set() -> None:
    teacher = torch.zeros(1, 2, 1, 3)
    teacher[0, 1, 0, 0] = 100.0
    student = teacher.clone()
    student[..., 1] += 3.0
    assert point_set_gap(student, teacher) == pytest.approx(3.0, rel=1e-5)
    assert point_set_gap(teacher, teacher) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="num_queries"):
        point_set_gap(student, teacher, num_queries=5)
