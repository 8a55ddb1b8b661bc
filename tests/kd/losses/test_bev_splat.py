"""Bilinear BEV splatting (scalar and feature values) and the mass-preserving BEV blur."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.bev_splat import (blur_bev, blur_matrices, gaussian_blur_matrix,
                                                         splat_bev, splat_bev_features)

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


def test_blur_matrix_is_symmetric_and_keeps_every_cells_mass() -> None:
    for size, sigma in ((10, 0.5), (10, 3.0), (5, 30.0), (128, 8.0)):
        matrix = gaussian_blur_matrix(size, sigma).double()
        torch.testing.assert_close(matrix, matrix.T, atol=1e-7, rtol=0)
        torch.testing.assert_close(matrix.sum(dim=0), torch.ones(size, dtype=torch.float64), atol=1e-6, rtol=0)
    # A sigma far wider than the grid folds back onto it: uniform, nothing lost.
    torch.testing.assert_close(gaussian_blur_matrix(5, 30.0), torch.full((5, 5), 0.2), atol=1e-4, rtol=0)


def test_blurred_maps_keep_their_mass_at_the_border_and_densities_sum_to_one() -> None:
    gen = torch.Generator().manual_seed(0)
    corner = torch.tensor([[[-3.9, -3.9, 0.0], [3.95, 3.8, 0.0]]]).expand(2, -1, -1)
    points = torch.cat([corner, torch.rand(2, 30, 3, generator=gen) * 8 - 4], 1)
    values = torch.rand(2, 32, generator=gen)
    rows, cols = blur_matrices((0.5, 2.0, 6.4, 50.0), PC, BEV)
    assert rows.shape == (4, 8, 8) and cols.shape == (4, 8, 8)
    bev = splat_bev(points, values, PC, BEV)
    for row, col in zip(rows, cols):
        blurred = blur_bev(bev, row, col)
        assert bool((blurred >= 0).all())
        torch.testing.assert_close(blurred.sum(dim=(1, 2)), values.sum(dim=1))
        density = blurred.flatten(1) / blurred.flatten(1).sum(dim=1, keepdim=True)
        torch.testing.assert_close(density.sum(dim=1), torch.ones(2))
    feature_map = splat_bev_features(points, torch.randn(2, 32, 5, generator=gen), PC, BEV)
    features = blur_bev(feature_map, rows[1], cols[1])
    assert features.shape == (2, 5, 8, 8)
    with pytest.raises(ValueError, match="rows"):
        blur_bev(bev, rows[0, :4, :4], cols[0])


def test_feature_splat_equals_the_scalar_splat_per_channel_and_conserves_mass() -> None:
    gen = torch.Generator().manual_seed(3)
    points = torch.cat([torch.rand(2, 20, 3, generator=gen) * 8 - 4, torch.tensor([[[9.0, 0.0, 0.0]]] * 2)], 1)
    values = torch.randn(2, 21, 4, generator=gen)
    maps = splat_bev_features(points, values, PC, BEV)
    assert maps.shape == (2, 4, 8, 8)
    for channel in range(4):
        torch.testing.assert_close(maps[:, channel], splat_bev(points, values[..., channel], PC, BEV))
    torch.testing.assert_close(maps.sum(dim=(2, 3)), values[:, :20].sum(dim=1))
    with pytest.raises(ValueError, match="splat_bev_features expects"):
        splat_bev_features(points, values[:, :5], PC, BEV)
