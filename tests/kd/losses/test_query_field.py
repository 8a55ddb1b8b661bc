"""The query receptive-field losses (sparse and dense): single- and multi-scale, scalar and feature fields."""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from projects.mmdet3d_plugin.kd.losses.bev_splat import blur_bev, blur_matrices, splat_bev_features
from projects.mmdet3d_plugin.kd.losses.bkl import BalancedKLLoss
from projects.mmdet3d_plugin.kd.losses.dense_query_field import DenseQueryFieldLoss, dense_query_samples
from projects.mmdet3d_plugin.kd.losses.query_field import (DEFAULT_BLUR_SIGMAS, QueryFieldLoss,
                                                           field_divergence, query_values, splat_bev)
from projects.mmdet3d_plugin.registry import MODELS

PC = [-4.0, -4.0, -1.0, 4.0, 4.0, 1.0]  # 8 x 8 cells of 1 m
BEV = (8, 8)


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
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="kl", temperature=2.0, blur_sigmas=(0.0,))
    student = (torch.tensor([[[0.5, 0.5, 0.0]], [[-2.5, 1.5, 0.0]]]), torch.tensor([[3.0], [1.0]]))
    teacher = (torch.tensor([[[1.5, -0.5, 0.0]], [[-2.5, 1.5, 0.0]]]), torch.tensor([[3.0], [2.0]]))
    maps = [splat_bev(p, v, PC, BEV).flatten(1) for p, v in (student, teacher)]
    log_s, log_t = (torch.log_softmax(m / 2.0, dim=1) for m in maps)
    expected = (log_t.exp() * (log_t - log_s)).sum(1).mean() * 4.0
    torch.testing.assert_close(loss(*student, *teacher), expected)


def test_density_field_is_the_kl_of_normalised_masses_whatever_their_scale() -> None:
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="density", blur_sigmas=(0.0,))
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
    """A difference only in easy-negative cells vanishes when TN cells weigh 0 (raw splat only:
    a blur would carry the far point's mass into the weighted cells)."""
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type="mse", blur_sigmas=(0.0,),
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


# ---------------------------------------------------------------- multi-scale blur
BIG_PC = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]  # 128 x 128 cells of 0.8 m
BIG_BEV = (128, 128)


@pytest.mark.parametrize("loss_type", ["density", "kl", "mse"])
def test_multi_scale_loss_is_the_mean_of_region_weighted_divergences_over_the_scales(loss_type) -> None:
    sigmas = (0.0, 1.0, 2.5)
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, loss_type=loss_type, blur_sigmas=sigmas, loss_weight=3.0,
                          region_weights=dict(tn_weight=0.2, gt_thr=0.5, teacher_thr=0.3))
    gt = [torch.tensor([[2.5, 2.5, 0.0, 2.0, 2.0, 1.0, 0.0, 0.0, 0.0]])]
    teacher_cls, teacher_box = torch.full((1, 1, 3), 2.0), torch.zeros(1, 1, 10)
    teacher_box[..., 7] = 1.0
    student = (torch.tensor([[[0.5, 0.5, 0.0], [-2.5, 1.5, 0.0]]]), torch.tensor([[0.7, 0.3]]))
    teacher = (torch.tensor([[[1.5, -0.5, 0.0], [2.5, 2.0, 0.0]]]), torch.tensor([[0.5, 0.5]]))
    maps = [splat_bev(p, v, PC, BEV) for p, v in (student, teacher)]
    weights = loss.region_weights(gt, teacher_cls, teacher_box)
    rows, cols = blur_matrices(sigmas[1:], PC, BEV)
    expected = [field_divergence(*maps, weights, loss_type, 1.0)]
    expected += [field_divergence(blur_bev(maps[0], r, c), blur_bev(maps[1], r, c), weights, loss_type, 1.0)
                 for r, c in zip(rows, cols)]
    value = loss(*student, *teacher, gt, teacher_cls, teacher_box)
    torch.testing.assert_close(value, 3.0 * torch.stack(expected).mean())
    assert "blur_rows" not in loss.state_dict() and "blur_cols" not in loss.state_dict()


@pytest.mark.parametrize("blur_sigmas", [DEFAULT_BLUR_SIGMAS, (0.0,), (0.0, 3.2)])
def test_blurred_density_zero_for_identical_positive_otherwise(blur_sigmas) -> None:
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, value_type="dfa_weights", blur_sigmas=blur_sigmas)
    points, weights = _field_inputs()
    assert loss(points, weights, points, weights).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(points + 0.3, weights, points, weights).item() > 1e-4


def _key_point_fields(offset: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher DFA-like key points ``(1, 20, 13, 3)``.

    The teacher's 20 queries sit on a 10 m grid (jittered by up to 1 m) in a 40 m box, each
    with 13 key points within 1 m of its centre; every student query is its teacher query
    shifted by ``offset`` metres in a random direction.
    """
    gen = torch.Generator().manual_seed(seed)
    grid_x, grid_y = torch.meshgrid((torch.arange(5) - 2) * 10.0, (torch.arange(4) - 1.5) * 10.0, indexing="ij")
    centres = torch.stack([grid_x.flatten(), grid_y.flatten()], -1) + torch.rand(20, 2, generator=gen) * 2 - 1
    teacher = centres[:, None] + torch.rand(20, 13, 2, generator=gen) * 2 - 1
    angle = torch.rand(20, 1, generator=gen) * 2 * math.pi
    student = teacher + offset * torch.cat([angle.cos(), angle.sin()], -1)[:, None]
    return tuple(torch.cat([xy, torch.zeros(20, 13, 1)], -1)[None] for xy in (student, teacher))


def _matched_distance(student: torch.Tensor, teacher: torch.Tensor) -> float:
    """Mean BEV distance (m) of the optimal one-to-one pairing of student and teacher points.

    A density cannot tell two of its points apart, so the points are paired by the best
    assignment, not by index (with the start, a 3 m shift of every query, it is about 3 m).
    """
    cost = torch.cdist(student[0, ..., :2].reshape(-1, 2), teacher[0, ..., :2].reshape(-1, 2)).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run on one intra-op thread: the 128 x 128 products are small, and two threads next to
    other work on a 2-core machine are many times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_student_points(offset: float, blur_sigmas: Sequence[float], steps: int) -> tuple[float, float]:
    """Matched distance before and after Adam (lr 0.05) on the student key points alone."""
    loss = QueryFieldLoss(pc_range=BIG_PC, bev_size=BIG_BEV, blur_sigmas=blur_sigmas)
    student, teacher = _key_point_fields(offset)
    values = torch.full((1, 20, 13), 1 / 13)  # uniform DFA weights: every query sums to 1
    points = student.clone().requires_grad_()
    optimiser = torch.optim.Adam([points], lr=0.05)
    with _one_thread():
        for _ in range(steps):
            optimiser.zero_grad()
            loss(points, values, teacher, values).backward()
            optimiser.step()
    return _matched_distance(student, teacher), _matched_distance(points.detach(), teacher)


def test_multi_scale_density_pulls_key_points_back_from_3m_where_the_raw_splat_cannot() -> None:
    """Every student query 3 m off its teacher query; Adam on the student key points only.

    Measured with this seed (matched distance in metres; docs/kd_losses_queries.md), and the
    share of key points whose first gradient points toward their own teacher point:

    ==================================  ===================  ====================  =======
    blur_sigmas                         from 3 m, 300 steps  from 0.4 m, 100 steps  toward
    ==================================  ===================  ====================  =======
    ``(0.0,)`` (the raw splat, before)  3.00 -> 2.945        0.40 -> 0.157         49 %
    ``(0.0, 1.6, 3.2, 6.4)``            3.00 -> 0.496        0.40 -> 0.146         98 %
    ``(0.8, 1.6, 3.2, 6.4)`` (default)  3.00 -> 0.460        0.40 -> 0.024         97 %
    ==================================  ===================  ====================  =======
    """
    start, fitted = _fit_student_points(3.0, DEFAULT_BLUR_SIGMAS, steps=300)
    assert start == pytest.approx(3.0, abs=0.01) and fitted < 0.5
    _, fitted_raw = _fit_student_points(3.0, (0.0,), steps=300)
    assert fitted_raw > 2.5
    start, fitted = _fit_student_points(0.4, DEFAULT_BLUR_SIGMAS, steps=100)
    assert start == pytest.approx(0.4, abs=0.01) and fitted < 0.05
    _, fitted_raw = _fit_student_points(0.4, (0.0,), steps=100)
    assert 0.1 < fitted_raw < 0.2  # the raw splat converges from 0.4 m, to a coarser fit
    student, teacher = _key_point_fields(3.0)
    values = torch.full((1, 20, 13), 1 / 13)
    shares = []
    for blur_sigmas in (DEFAULT_BLUR_SIGMAS, (0.0,)):
        points = student.clone().requires_grad_()
        QueryFieldLoss(pc_range=BIG_PC, bev_size=BIG_BEV, blur_sigmas=blur_sigmas)(
            points, values, teacher, values).backward()
        toward = (-points.grad[..., :2] * (teacher - student)[..., :2]).sum(-1) > 0
        shares.append(toward.float().mean().item())
    assert shares[0] > 0.9 and shares[1] < 0.6


def test_blur_sigmas_are_validated() -> None:
    for bad in ((), "0.8", (-0.8,), (float("nan"),), (1.6, 1.6), 3.2, (None,)):
        with pytest.raises(ValueError, match="blur_sigmas"):
            QueryFieldLoss(pc_range=PC, blur_sigmas=bad)
    with pytest.raises(ValueError, match="DenseQueryFieldLoss: blur_sigmas"):
        DenseQueryFieldLoss(pc_range=PC, position_range=PC, blur_sigmas=(-1.0,))
    assert QueryFieldLoss(pc_range=PC, blur_sigmas=[0, 2]).blur_sigmas == (0.0, 2.0)


# ---------------------------------------------------------------- value_type='features'
def _feature_loss(**kwargs) -> QueryFieldLoss:
    return QueryFieldLoss(pc_range=PC, bev_size=BEV, value_type="features", loss_type="bkl", **kwargs)


def test_feature_field_zero_for_identical_positive_otherwise_student_grad_only() -> None:
    loss = MODELS.build(dict(type="QueryFieldLoss", pc_range=PC, bev_size=BEV, value_type="features",
                             loss_type="bkl", bkl=dict(tau=1.0), loss_weight=2.0))
    gen = torch.Generator().manual_seed(4)
    points, feats = torch.rand(2, 5, 13, 3, generator=gen) * 6 - 3, torch.randn(2, 5, 16, generator=gen)
    assert loss(points, feats, points, feats, progress=0.3).item() == pytest.approx(0.0, abs=1e-6)
    student_points = (points + 0.7).requires_grad_()
    student_feats = (feats + 0.5 * torch.randn(2, 5, 16, generator=gen)).requires_grad_()
    teacher_points, teacher_feats = points.clone().requires_grad_(), feats.clone().requires_grad_()
    value = loss(student_points, student_feats, teacher_points, teacher_feats, progress=0.3)
    assert value.item() > 1e-4
    value.backward()
    assert student_points.grad.abs().sum() > 0 and student_feats.grad.abs().sum() > 0
    assert teacher_points.grad is None and teacher_feats.grad is None


def test_feature_field_is_balanced_kl_of_the_splatted_features_and_follows_progress() -> None:
    """Single scale: exactly BalancedKLLoss on the (B, C, H, W) splats; 'released' schedule."""
    bkl_args = dict(tau=2.0, reverse_weight=3.0, schedule="released")
    loss = _feature_loss(blur_sigmas=(0.0,), bkl=bkl_args, loss_weight=0.5)
    gen = torch.Generator().manual_seed(5)
    s_points, t_points = (torch.rand(2, q, 3, 3, generator=gen) * 6 - 3 for q in (4, 6))
    s_feats, t_feats = (torch.randn(2, q, 8, generator=gen) * 3 for q in (4, 6))
    # Each query's feature split equally over its 3 locations.
    maps = [splat_bev_features(p.flatten(1, 2), (f / 3).repeat_interleave(3, dim=1), PC, BEV)
            for p, f in ((s_points, s_feats), (t_points, t_feats))]
    reference = BalancedKLLoss(loss_weight=1.0, **bkl_args)
    values = {}
    for progress in (0.0, 0.5, 1.0):
        values[progress] = loss(s_points, s_feats, t_points, t_feats, progress=progress)
        torch.testing.assert_close(values[progress], 0.5 * reference(*maps, progress=progress))
    assert values[0.0].item() != pytest.approx(values[1.0].item(), rel=1e-3)
    # 'released': r * [(1 - p) KL(T || S) + p KL(S || T)] is linear in the progress.
    torch.testing.assert_close(values[0.5], (values[0.0] + values[1.0]) / 2)
    with pytest.raises(ValueError, match="progress"):
        loss(s_points, s_feats, t_points, t_feats, progress=1.5)
    multi = _feature_loss(blur_sigmas=(0.0, 1.5), bkl=bkl_args)
    assert multi(s_points, s_feats, t_points, t_feats).item() > 0


def test_feature_field_needs_matching_channels_and_the_bkl_pairing() -> None:
    loss = _feature_loss()
    points = torch.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"student_values \(1, 2, 32\) and teacher_values \(1, 2, 64\)"):
        loss(points, torch.zeros(1, 2, 32), points, torch.zeros(1, 2, 64))
    with pytest.raises(ValueError, match="value_type='features'"):
        QueryFieldLoss(pc_range=PC, value_type="features", loss_type="density")
    with pytest.raises(ValueError, match="value_type='features'"):
        QueryFieldLoss(pc_range=PC, value_type="dfa_weights", loss_type="bkl")
    with pytest.raises(ValueError, match="region_weights"):
        _feature_loss(region_weights=dict(tn_weight=0.1))
    with pytest.raises(ValueError, match="did you mean 'tau'"):
        _feature_loss(bkl=dict(taux=2.0))
    with pytest.raises(ValueError, match="loss_weight"):
        _feature_loss(bkl=dict(loss_weight=2.0))
    with pytest.raises(ValueError, match="bkl=... is only used by loss_type='bkl'"):
        QueryFieldLoss(pc_range=PC, bkl=dict(tau=2.0))
    with pytest.raises(ValueError, match="loss_type"):
        DenseQueryFieldLoss(pc_range=PC, position_range=PC, loss_type="bkl")


@pytest.mark.gpu
def test_multi_scale_and_feature_fields_run_on_the_input_device() -> None:
    device = torch.device("cuda")
    points, weights = (t.to(device) for t in _field_inputs())
    loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, value_type="dfa_weights").to(device)
    student = (points + 0.5).requires_grad_()
    value = loss(student, weights, points, weights)
    value.backward()
    assert value.device.type == "cuda" and student.grad.abs().sum() > 0
    cpu_loss = QueryFieldLoss(pc_range=PC, bev_size=BEV, value_type="dfa_weights")
    cpu = cpu_loss(student.detach().cpu(), weights.cpu(), points.cpu(), weights.cpu())
    torch.testing.assert_close(value.cpu(), cpu, rtol=1e-4, atol=1e-6)
    feats = torch.randn(2, 5, 16, device=device)
    assert _feature_loss()(points, feats, points + 0.5, feats, progress=0.5).device.type == "cuda"
