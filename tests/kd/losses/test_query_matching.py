"""Hungarian pairing of teacher and student queries (not index order)."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.query_matching import (QueryMatcher, gather_queries,
                                                              match_outputs, take_last_queries)


def _teacher(batch: int = 2, queries: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    cls = torch.randn(batch, queries, 4, generator=gen) * 3
    box = torch.randn(batch, queries, 10, generator=gen)
    box[..., :3] = torch.rand(batch, queries, 3, generator=gen) * 80 - 40
    return cls, box


def test_permuted_student_queries_are_paired_with_their_teacher_queries() -> None:
    teacher_cls, teacher_box = _teacher()
    perm = torch.stack([torch.randperm(6, generator=torch.Generator().manual_seed(b)) for b in range(2)])
    student_cls = gather_queries(teacher_cls, perm) + 0.05
    student_box = gather_queries(teacher_box, perm) + 0.1
    pairs = QueryMatcher()(student_cls, student_box, teacher_cls, teacher_box)
    assert pairs.num_pairs == 6 and (pairs.num_student, pairs.num_teacher) == (6, 6)
    # Student query s holds teacher query perm[s]: each pair must point at the same object.
    torch.testing.assert_close(torch.gather(perm, 1, pairs.student_index), pairs.teacher_index)
    assert not torch.equal(pairs.student_index, pairs.teacher_index)


def test_num_pairs_keeps_the_most_confident_teacher_queries() -> None:
    teacher_cls, teacher_box = _teacher()
    pairs = QueryMatcher(num_pairs=2)(teacher_cls, teacher_box, teacher_cls, teacher_box)
    expected = teacher_cls.sigmoid().amax(-1).topk(2, dim=1).indices
    torch.testing.assert_close(pairs.teacher_index, expected)
    torch.testing.assert_close(pairs.student_index, expected)


def test_cost_is_centre_l1_plus_probability_l1() -> None:
    matcher = QueryMatcher(center_weight=2.0, cls_weight=0.5)
    student_cls, teacher_cls = torch.zeros(1, 1, 2), torch.tensor([[[0.0, 100.0]]])
    student_box, teacher_box = torch.zeros(1, 1, 10), torch.zeros(1, 1, 10)
    teacher_box[0, 0, :3] = torch.tensor([1.0, -2.0, 0.5])
    cost = matcher.cost(student_cls, student_box, teacher_cls, teacher_box)
    assert cost.item() == pytest.approx(2.0 * 3.5 + 0.5 * 0.5)


def test_match_outputs_drops_leading_dn_queries_and_detaches_the_teacher() -> None:
    teacher_cls, teacher_box = _teacher(queries=4)
    student_cls = torch.cat([torch.randn(2, 3, 4), teacher_cls.flip(1)], 1).requires_grad_()
    student_box = torch.cat([torch.randn(2, 3, 10), teacher_box.flip(1)], 1)
    matched = match_outputs(QueryMatcher(), 4, student_cls, student_box, teacher_cls.requires_grad_(), teacher_box)
    torch.testing.assert_close(matched.pairs.student_index, 3 - matched.pairs.teacher_index)
    torch.testing.assert_close(matched.student_cls, matched.teacher_cls)
    assert matched.student_cls.requires_grad and not matched.teacher_cls.requires_grad
    assert take_last_queries(student_box, None, "x") is student_box
    with pytest.raises(ValueError, match="num_queries=9"):
        take_last_queries(student_box, 9, "student_box")


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="non-negative weights"):
        QueryMatcher(center_weight=0.0, cls_weight=0.0)
    cls, box = _teacher()
    with pytest.raises(ValueError, match="same B and Q"):
        QueryMatcher()(cls, box[:, :3], cls, box)
    with pytest.raises(ValueError, match="batch size and classes"):
        QueryMatcher()(cls[..., :2], box, cls, box)
