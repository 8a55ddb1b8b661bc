"""Splatting valued locations into a BEV grid, and blurring BEV maps without losing mass.

The grid has ``bev_size = (H, W)`` cells over the ``x`` / ``y`` extent of ``pc_range``
(row along ``y``, column along ``x``; cell centres at ``x_min + (j + 0.5) * cell_x``).

**Splatting** is bilinear and differentiable: a location at continuous cell coordinate
``g = (x - x_min) / cell - 0.5`` (cell centres at integers) spreads its value over the 4
neighbouring cell centres with the bilinear weights, **summed** (no last-write-wins).
Locations inside the ``x`` / ``y`` range keep all their mass (in the outer half cell the
coordinate is clamped onto the border cells); locations outside are dropped.
:func:`splat_bev` splats scalar values into ``(B, H, W)``, :func:`splat_bev_features`
``C``-dim values into ``(B, C, H, W)``; both use the same :func:`bilinear_corners`.

**Blurring** (:func:`blur_bev`) is a separable Gaussian with **mirror (reflecting)
borders**: the mass a cell would spread beyond the grid edge is folded back across the
edge, as if the edge were a mirror halfway past the border cell (the heat equation with a
no-flux border). Each axis is one ``(N, N)`` matrix, ``A[i, j] = sum over the mirror
images j' of j of g(i - j')``, ``g`` the Gaussian sampled at integer offsets and
normalised to sum 1. ``A`` is symmetric and every column sums to 1, so the blur keeps the
total mass exactly, for any sigma (a kernel wider than the grid is folded again), and a
location at the border is not down-weighted against those inside.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

CORNERS = ((0, 0), (1, 0), (0, 1), (1, 1))
# Mirror images farther than this many sigmas from the grid are left out (mass below 1e-8).
GAUSSIAN_TRUNCATE = 6.0


def bilinear_corners(points: Tensor, pc_range: Sequence[float], bev_size: Sequence[int],
                     caller: str) -> tuple[Tensor, Tensor]:
    """Flat cell index and bilinear weight of the 4 corners of every location.

    Args:
        points: ``(B, M, >=2)`` metric locations (only ``x``, ``y`` used).
        pc_range: ``(6,)``; the grid covers ``[x_min, x_max] x [y_min, y_max]``.
        bev_size: ``(H, W)``, at least 2 x 2.
        caller: the public function's name, used in the message.

    Returns:
        ``index (B, 4 M)`` into the flattened ``H * W`` grid (corner-major: the first ``M``
        entries are every location's first corner) and ``weight (B, 4 M)``, zero for
        locations outside the range; differentiable in ``points``.
    """
    height, width = int(bev_size[0]), int(bev_size[1])
    if points.dim() != 3 or points.shape[-1] < 2 or min(height, width) < 2:
        raise ValueError(f"{caller} expects points (B, M, 2 or 3) and a grid of at least 2 x 2 cells, "
                         f"got points {tuple(points.shape)} and bev_size {tuple(bev_size)}")
    low = points.new_tensor([pc_range[0], pc_range[1]])
    span = points.new_tensor([pc_range[3] - pc_range[0], pc_range[4] - pc_range[1]])
    size = points.new_tensor([float(width), float(height)])
    unit = (points[..., :2] - low) / span
    inside = ((unit >= 0) & (unit <= 1)).all(dim=-1) & torch.isfinite(unit).all(dim=-1)
    limit = size - 1
    grid = torch.minimum(torch.maximum(unit * size - 0.5, torch.zeros_like(size)), limit)
    grid = torch.where(inside.unsqueeze(-1), grid, torch.zeros_like(grid))
    base = grid.detach().floor().clamp(max=limit - 1).clamp(min=0)
    frac = grid - base
    index, weight = [], []
    for dx, dy in CORNERS:
        wx = frac[..., 0] if dx else 1 - frac[..., 0]
        wy = frac[..., 1] if dy else 1 - frac[..., 1]
        index.append(((base[..., 1] + dy) * width + base[..., 0] + dx).long())
        weight.append(torch.where(inside, wx * wy, torch.zeros_like(wx)))
    return torch.cat(index, dim=1), torch.cat(weight, dim=1)


def splat_bev(points: Tensor, values: Tensor, pc_range: Sequence[float], bev_size: Sequence[int]) -> Tensor:
    """Bilinear, summing splat of valued locations into a BEV grid.

    Args:
        points: ``(B, M, >=2)`` metric locations (only ``x``, ``y`` used).
        values: ``(B, M)`` value of every location.
        pc_range: ``(6,)``; the grid covers ``[x_min, x_max] x [y_min, y_max]``.
        bev_size: ``(H, W)``.

    Returns:
        ``(B, H, W)``; its sum equals the sum of the values of the in-range locations.
    """
    if values.shape != points.shape[:2]:
        raise ValueError(f"splat_bev expects points (B, M, 2 or 3) and values (B, M), got "
                         f"{tuple(points.shape)} and {tuple(values.shape)}")
    index, weight = bilinear_corners(points, pc_range, bev_size, "splat_bev")
    source = values.repeat(1, len(CORNERS)) * weight
    height, width = int(bev_size[0]), int(bev_size[1])
    bev = source.new_zeros(points.shape[0], height * width).scatter_add(1, index, source)
    return bev.view(-1, height, width)


def splat_bev_features(points: Tensor, values: Tensor, pc_range: Sequence[float],
                       bev_size: Sequence[int]) -> Tensor:
    """Bilinear, summing splat of ``C``-dim values into a ``C``-channel BEV grid.

    Args:
        points: ``(B, M, >=2)`` metric locations (only ``x``, ``y`` used).
        values: ``(B, M, C)`` value vector of every location.
        pc_range: ``(6,)``; the grid covers ``[x_min, x_max] x [y_min, y_max]``.
        bev_size: ``(H, W)``.

    Returns:
        ``(B, C, H, W)``; channel ``c`` equals :func:`splat_bev` of ``values[..., c]``.
    """
    if values.dim() != 3 or values.shape[:2] != points.shape[:2]:
        raise ValueError(f"splat_bev_features expects points (B, M, 2 or 3) and values (B, M, C), got "
                         f"{tuple(points.shape)} and {tuple(values.shape)}")
    index, weight = bilinear_corners(points, pc_range, bev_size, "splat_bev_features")
    source = values.repeat(1, len(CORNERS), 1) * weight.unsqueeze(-1)
    height, width = int(bev_size[0]), int(bev_size[1])
    index = index.unsqueeze(-1).expand(-1, -1, values.shape[-1])
    bev = source.new_zeros(points.shape[0], height * width, values.shape[-1]).scatter_add(1, index, source)
    return bev.transpose(1, 2).reshape(points.shape[0], -1, height, width)


def gaussian_blur_matrix(size: int, sigma: float) -> Tensor:
    """``(size, size)`` float32 mirror-bordered Gaussian blur along one axis (module docstring).

    Args:
        size: cells along the axis.
        sigma: standard deviation in cells (> 0).

    Returns:
        ``A`` with ``blurred = A @ map`` along that axis; symmetric, columns sum to 1.
    """
    if size < 1 or not sigma > 0 or not math.isfinite(sigma):
        raise ValueError(f"gaussian_blur_matrix needs size >= 1 and a finite sigma > 0, got {size}, {sigma}")
    periods = math.ceil(GAUSSIAN_TRUNCATE * sigma / (2 * size)) + 1
    # g summed over the period 2 * size of the mirror images, at offsets -(2 size - 1) .. 2 size - 1.
    offsets = torch.arange(1 - 2 * size, 2 * size, dtype=torch.float64)
    shifts = 2 * size * torch.arange(-periods, periods + 1, dtype=torch.float64)
    periodic = torch.exp(-0.5 * ((offsets[:, None] + shifts) / sigma).pow(2)).sum(dim=1)
    # Image j + 2 k size sits at offset i - j, image -1 - j + 2 k size at offset i + j + 1.
    cells = torch.arange(size)
    matrix = periodic[cells[:, None] - cells + 2 * size - 1] + periodic[cells[:, None] + cells + 2 * size]
    return (matrix / matrix.sum(dim=0, keepdim=True)).float()


def blur_bev(bev: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Mass-preserving separable Gaussian blur of BEV maps (mirror borders).

    Args:
        bev: ``(..., H, W)`` maps, e.g. ``(B, H, W)`` or ``(B, C, H, W)``.
        rows: ``(H, H)`` blur along ``y`` (:func:`gaussian_blur_matrix`).
        cols: ``(W, W)`` blur along ``x``.

    Returns:
        ``(..., H, W)`` in ``bev``'s dtype, same sum over ``(H, W)`` as ``bev``;
        differentiable in ``bev``.
    """
    height, width = bev.shape[-2:] if bev.dim() >= 2 else (-1, -1)
    if rows.shape != (height, height) or cols.shape != (width, width):
        raise ValueError(f"blur_bev expects maps (..., H, W) with rows (H, H) and cols (W, W), got "
                         f"{tuple(bev.shape)}, {tuple(rows.shape)} and {tuple(cols.shape)}")
    return rows.to(bev) @ bev @ cols.to(bev)


def check_blur_sigmas(blur_sigmas: Sequence[float], example: Sequence[float], owner: str) -> tuple[float, ...]:
    """The blur scales in metres as floats; ``ValueError`` naming ``blur_sigmas`` (and ``owner``,
    with ``example`` as a valid value) unless a non-empty sequence of distinct finite sigmas >= 0."""
    message = (f"{owner}: blur_sigmas must be a non-empty sequence of distinct, finite sigmas >= 0 "
               f"in metres (0 = the raw splat), e.g. {tuple(example)}; got {blur_sigmas!r}")
    if isinstance(blur_sigmas, (str, bytes)):
        raise ValueError(message)
    try:
        sigmas = tuple(float(sigma) for sigma in blur_sigmas)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not sigmas or len(set(sigmas)) != len(sigmas) or not all(math.isfinite(s) and s >= 0 for s in sigmas):
        raise ValueError(message)
    return sigmas


def blur_matrices(sigmas: Sequence[float], pc_range: Sequence[float], bev_size: Sequence[int]
                  ) -> tuple[Tensor, Tensor]:
    """Blur matrices of metric ``sigmas`` (all > 0) on the ``(H, W)`` grid over ``pc_range``.

    Returns:
        ``rows (S, H, H)`` and ``cols (S, W, W)`` float32 (:func:`gaussian_blur_matrix` with the
        sigma in cells of that axis: ``cell_y = (y_max - y_min) / H``, ``cell_x = (x_max - x_min) / W``).
    """
    height, width = int(bev_size[0]), int(bev_size[1])
    cell_y, cell_x = (pc_range[4] - pc_range[1]) / height, (pc_range[3] - pc_range[0]) / width
    if not sigmas:
        return torch.zeros(0, height, height), torch.zeros(0, width, width)
    return (torch.stack([gaussian_blur_matrix(height, sigma / cell_y) for sigma in sigmas]),
            torch.stack([gaussian_blur_matrix(width, sigma / cell_x) for sigma in sigmas]))
