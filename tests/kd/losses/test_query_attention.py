"""Attention-map distillation of matched queries."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.query_attention import QueryAttentionLoss, attention_kl
from projects.mmdet3d_plugin.kd.losses.query_matching import gather_queries
from projects.mmdet3d_plugin.registry import MODELS


def _outputs(seed: int = 0, queries: int = 5, tokens: int = 12):
    gen = torch.Generator().manual_seed(seed)
    cls = torch.randn(2, queries, 3, generator=gen) * 2
    box = torch.randn(2, queries, 10, generator=gen)
    box[..., :3] = torch.rand(2, queries, 3, generator=gen) * 60 - 30
    attn = (torch.randn(2, queries, tokens, generator=gen) * 2).softmax(-1)
    return attn, cls, box


def test_attention_kl_values() -> None:
    student, teacher = torch.tensor([[[0.5, 0.25, 0.25]]]), torch.tensor([[[0.2, 0.3, 0.5]]])
    expected = (teacher * (teacher / student).log()).sum(-1)
    torch.testing.assert_close(attention_kl(student, teacher, 1.0), expected)
    sharpened_t, sharpened_s = teacher.pow(2), student.pow(2)
    sharpened_t, sharpened_s = sharpened_t / sharpened_t.sum(-1, True), sharpened_s / sharpened_s.sum(-1, True)
    expected = (sharpened_t * (sharpened_t / sharpened_s).log()).sum(-1) * 0.25
    torch.testing.assert_close(attention_kl(student, teacher, 0.5), expected)


def test_zero_for_permuted_identical_queries_positive_otherwise_student_grad_only() -> None:
    loss = MODELS.build(dict(type="QueryAttentionLoss", num_queries=5, loss_weight=2.0))
    attn, cls, box = _outputs()
    perm = torch.tensor([[3, 1, 4, 0, 2], [0, 2, 1, 4, 3]])
    dn = torch.rand(2, 2, 12).softmax(-1)
    student = [gather_queries(t, perm) for t in (attn, cls, box)]
    student = [torch.cat([torch.zeros_like(t[:, :2]) if i else dn, t], 1) for i, t in enumerate(student)]
    assert loss(student[0], attn, student[1], student[2], cls, box).item() == pytest.approx(0.0, abs=1e-6)
    other_attn = _outputs(seed=1)[0].requires_grad_()
    teacher_attn = attn.clone().requires_grad_()
    value = loss(other_attn, teacher_attn, cls, box, cls, box)
    value.backward()
    assert value.item() > 0 and other_attn.grad.abs().sum() > 0 and teacher_attn.grad is None


def test_unweighted_loss_is_the_mean_kl_of_the_pairs() -> None:
    loss = QueryAttentionLoss(weight_by_score=False)
    attn, cls, box = _outputs()
    other = _outputs(seed=2)[0]
    expected = attention_kl(other, attn, 1.0).mean()
    torch.testing.assert_close(loss(other, attn, cls, box, cls, box), expected)


def test_different_token_counts_or_queries_raise() -> None:
    attn, cls, box = _outputs()
    with pytest.raises(ValueError, match="same K image tokens"):
        QueryAttentionLoss()(attn[..., :10], attn, cls, box, cls, box)
    with pytest.raises(ValueError, match="same queries"):
        QueryAttentionLoss()(attn[:, :4], attn, cls, box, cls, box)
