"""BEV splatting and the query receptive-field losses (sparse and dense)."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.query_field import (DenseQueryFieldLoss, QueryFieldLoss,
                                                           dense_query_samples, query_values, splat_bev)
from projects.mmdet3d_plugin.registry import MODELS

PC = [-4.0, -4.0, -1.0, 4.0, 4.0, 1.0]  # 8 x 8 cells of 1 m
BEV = (8, 8)


def test_splat_conserves_mass_and_drops_out_of_range_points() -> None:
    gen = torch.Generator().manual_seed(0)
    inside = torch.rand(2, 30, 3, generator=gen) * 8 - 4
    outside = torch.tensor([[[5.0, 0.0, 0.0], [0.0, -4.5, 0.0]]]).expand(2, -1, -1)
    values = torch.rand(2, 32, generator=gen)
    bev = splat_bev(torch.cat([inside, outside], 1), values, PC, BEV)
    assert bev.shape == (2, 8, 8)
    torch.testing.assert_close(bev.sum(dim=(1, 2)), values[:, :30].sum(dim=1))


def test_point_at_cell_centre_lands_in_that_cell_and_midpoints_split() -> None:
    points = torch.tensor([[[-4.0 + 2.5, -4.0 + 5.5, 0.0], [1.0, -1.5, 0.0]]])
    bev = splat_bev(points, torch.tensor([[2.0, 1.0]]), PC, BEV)
    assert bev[0, 5, 2] == pytest.approx(2.0)
    # (1.0, -1.5) lies between the centres of columns 4 and 5 on row 2: half each.
    assert bev[0, 2, 4] == pytest.approx(0.5) and bev[0, 2, 5] == pytest.approx(0.5)
    assert bev.sum() == pytest.approx(3.0)


def test_splat_is_differentiable_in_positions_and_values() -> None:
    points = torch.tensor([[[0.3, -1.2, 0.0], [2.7, 1.1, 0.0]]], dtype=torch.float64, requires_grad=True)
    values = torch.tensor([[1.5, 0.7]], dtype=torch.float64, requires_grad=True)
    weights = torch.arange(64, dtype=torch.float64).view(1, 8, 8)
    assert torch.autograd.gradcheck(lambda p, v: (splat_bev(p, v, PC, BEV) * weights).sum(), (points, values))
    (splat_bev(points, values, PC, BEV) * weights).sum().backward()
    assert points.grad[..., :2].abs().sum() > 0 and values.grad.abs().sum() > 0


def _field_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(2, 5, 13, 3, generator=gen) * 6 - 3
    weights = torch.rand(2, 2, 1, 4, 5, 13, generator=gen)
    return points, weights


@pytest.mark.parametrize("loss_type", ["density", "kl", "mse"])
def test_query_field_loss_zero_for_identical_positive_otherwise_student_grad_only(loss_type) -> None:
    loss = MODELS.build(dict(type="QueryFieldLoss", pc_range=PC, bev_size=BEV, loss_type=loss_type,
                             value_type="dfa_weights", loss_weight=2.0))
    points, weights = _field_inputs()
    assert loss(points, weights, points, weights).item() == pytest.approx(0.0, abs=1e-6)
    student_points = (points + 0.7).requires_grad_()
    student_weights = weights.clone().requires_grad_()
    teacher_points, teacher_weights = points.clone().requires_grad_(), weights.clone().requires_grad_()
    value = loss(student_points, student_weights, teacher_points, teacher_weights)
    assert value.item() > 1e-4
    value.backward()
    assert student_points.grad.abs().sum() > 0 and student_weights.grad.abs().sum() > 0
    assert teacher_points.grad is None and teacher_weights.grad is None


def test_kl_field_matches_plain_kl_of_spatial_softmax() -> None:
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="kl", temperature=2.0)
    student = (torch.tensor([[[0.5, 0.5, 0.0]], [[-2.5, 1.5, 0.0]]]), torch.tensor([[3.0], [1.0]]))
    teacher = (torch.tensor([[[1.5, -0.5, 0.0]], [[-2.5, 1.5, 0.0]]]), torch.tensor([[3.0], [2.0]]))
    maps = [splat_bev(p, v, PC, BEV).flatten(1) for p, v in (student, teacher)]
    log_s, log_t = (torch.log_softmax(m / 2.0, dim=1) for m in maps)
    expected = (log_t.exp() * (log_t - log_s)).sum(1).mean() * 4.0
    torch.testing.assert_close(loss(*student, *teacher), expected)


def test_density_field_is_the_kl_of_normalised_masses_whatever_their_scale() -> None:
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="density")
    student = (torch.tensor([[[0.5, 0.5, 0.0], [-2.5, 1.5, 0.0]]]), torch.tensor([[0.003, 0.001]]))
    teacher = (torch.tensor([[[1.5, -0.5, 0.0], [-2.5, 1.5, 0.0]]]), torch.tensor([[0.002, 0.002]]))
    maps = [splat_bev(p, v, PC, BEV).flatten(1) for p, v in (student, teacher)]
    p_s, p_t = ((m + 1e-6 * m.mean()) / (m + 1e-6 * m.mean()).sum() for m in maps)
    expected = (p_t * (p_t.log() - p_s.log())).sum()
    value = loss(*student, *teacher)
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-6)
    assert value.item() > 0.1  # tiny per-cell values still give a full-size divergence
    scaled = loss(student[0], student[1] * 1000, teacher[0], teacher[1] * 10)
    torch.testing.assert_close(scaled, value, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="non-negative maps"):
        loss(student[0], -student[1], *teacher)
    with pytest.raises(ValueError, match="only with 'kl'"):
        QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="density", temperature=2.0)


def test_value_types_and_dn_queries_in_front_are_dropped() -> None:
    feats = torch.randn(2, 5, 32)
    rms = query_values(feats, "feature_rms", 4)
    torch.testing.assert_close(rms.sum(-1), feats.pow(2).mean(-1).sqrt())
    logits = torch.randn(2, 5, 10)
    torch.testing.assert_close(query_values(logits, "max_sigmoid", 1)[..., 0], logits.sigmoid().amax(-1))
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, value_type="feature_rms", num_queries=5)
    points = torch.rand(2, 5, 3) * 6 - 3
    dn_points, dn_feats = torch.rand(2, 3, 3) * 6 - 3, torch.randn(2, 3, 32)
    student = (torch.cat([dn_points, points], 1), torch.cat([dn_feats, feats], 1))
    assert loss(*student, points, feats).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="num_queries=5"):
        loss(points[:, :4], feats[:, :4], points, feats)


def test_region_weights_restrict_the_loss_to_weighted_cells() -> None:
    """A difference only in easy-negative cells vanishes when TN cells weigh 0."""
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="mse",
                          region_weights=dict(tn_weight=0.0, gt_thr=0.5, teacher_thr=0.3))
    gt = [torch.tensor([[2.5, 2.5, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])]
    teacher_cls = torch.full((1, 1, 3), -10.0)
    teacher_box = torch.zeros(1, 1, 10)
    teacher_box[..., 7] = 1.0
    teacher_pts, values = torch.tensor([[[2.5, 2.5, 0.0]]]), torch.ones(1, 1)
    far = torch.tensor([[[2.5, 2.5, 0.0], [-3.5, -3.5, 0.0]]])
    value = loss(far, torch.tensor([[1.0, 5.0]]), teacher_pts, values, gt, teacher_cls, teacher_box)
    assert value.item() == pytest.approx(0.0, abs=1e-6)
    near = torch.tensor([[[2.5, 2.5, 0.0]]])
    assert loss(near, torch.full((1, 1), 3.0), teacher_pts, values, gt, teacher_cls, teacher_box).item() > 0
    with pytest.raises(ValueError, match="needs gt_bboxes_3d"):
        loss(near, values, teacher_pts, values)


def test_dense_samples_project_reference_points_onto_attended_rays() -> None:
    # Token 0: ray from (0, 0, 0) to (10, 0, 0); token 1: ray from (0, 0, 0) to (0, 10, 0).
    token_points = torch.tensor([[[[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]],
                                  [[0.0, 0.0, 0.0], [0.0, 10.0, 0.0]]]])
    attn = torch.tensor([[[0.8, 0.2]]])
    reference = torch.tensor([[[3.0, 4.0, 1.0]]])
    points, values = dense_query_samples(attn, reference, token_points, num_points=2)
    torch.testing.assert_close(points, torch.tensor([[[[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]]]))
    torch.testing.assert_close(values, torch.tensor([[[0.8, 0.2]]]))


def test_dense_query_field_loss_zero_for_identical_and_grad_to_student_attention() -> None:
    pos_range = [-8.0, -8.0, -2.0, 8.0, 8.0, 2.0]
    loss = DenseQueryFieldLoss(pc_range=PC, position_range=pos_range, num_points=3, bev_size=BEV,
                               num_queries=4)
    gen = torch.Generator().manual_seed(1)
    attn = torch.rand(2, 6, 10, generator=gen).softmax(-1)
    refs = torch.rand(2, 6, 3, generator=gen)
    tokens = torch.rand(2, 10, 4, 3, generator=gen)
    assert loss(attn, refs, tokens, attn[:, 2:], refs[:, 2:], tokens).item() == pytest.approx(0.0, abs=1e-6)
    student_attn = torch.rand(2, 6, 10, generator=gen).softmax(-1).requires_grad_()
    teacher_attn = attn[:, 2:].clone().requires_grad_()
    value = loss(student_attn, refs, tokens, teacher_attn, refs[:, 2:], tokens)
    value.backward()
    assert value.item() > 0 and student_attn.grad.abs().sum() > 0 and teacher_attn.grad is None


def test_bad_shapes_and_settings_raise() -> None:
    with pytest.raises(ValueError, match="value_type"):
        QueryFieldLoss(pc_range=PC, value_type="norm")
    with pytest.raises(ValueError, match="loss_type"):
        QueryFieldLoss(pc_range=PC, loss_type="l1")
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV)
    with pytest.raises(ValueError, match="student_values"):
        loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4), torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3))
