"""Depth bins, soft depth labels and the resizing of LiDAR depth maps to a feature grid.

Bins of ``[d_min, d_max]`` in ``D`` parts, edges ``e_0 = d_min < ... < e_D = d_max``:

* ``'uniform'``: ``e_k = d_min + (d_max - d_min) * k / D``;
* ``'lid'`` (linear-increasing, CaDDN): ``e_k = d_min + (d_max - d_min) * k (k + 1) / (D (D + 1))``,
  finer near the camera where depth errors cost most.

Bin ``k`` has centre ``c_k = (e_k + e_{k+1}) / 2``. For a depth ``d``:

* ``'one_hot'``: ``y_k = 1`` for the bin with ``e_k <= d < e_{k+1}`` (``d_max`` in the last);
* ``'gaussian'`` (soft, LabelDistill-style): ``y_k ∝ exp(-(c_k - d)^2 / (2 sigma^2))``,
  normalised to sum 1 (``sigma`` in metres). Neighbouring bins share the mass of a depth near
  their border, so the label says how wrong a bin is, not only whether it is wrong. For
  uniform bins it becomes the one-hot label as ``sigma -> 0``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BIN_SPACINGS = ("uniform", "lid")
LABEL_TYPES = ("gaussian", "one_hot")


def depth_bin_edges(depth_range: tuple[float, float], num_bins: int, spacing: str = "uniform") -> Tensor:
    """``(D + 1,)`` float32 bin edges from ``d_min`` to ``d_max`` (see the module notes)."""
    if spacing not in BIN_SPACINGS:
        raise ValueError(f"depth bin spacing must be one of {BIN_SPACINGS}, got {spacing!r}")
    d_min, d_max = float(depth_range[0]), float(depth_range[1])
    k = torch.arange(num_bins + 1, dtype=torch.float64)
    fraction = k / num_bins if spacing == "uniform" else k * (k + 1) / (num_bins * (num_bins + 1))
    return (d_min + (d_max - d_min) * fraction).float()


def one_hot_labels(depth: Tensor, edges: Tensor) -> Tensor:
    """``(P, D)`` one-hot labels of the bins holding ``depth`` ``(P,)`` (in ``[e_0, e_D]``)."""
    index = torch.bucketize(depth, edges[1:-1].contiguous(), right=True)
    return F.one_hot(index, len(edges) - 1).to(depth.dtype)


def gaussian_labels(depth: Tensor, centres: Tensor, sigma: float) -> Tensor:
    """``(P, D)`` Gaussian labels over the bin centres ``(D,)`` for ``depth`` ``(P,)``.

    Computed as a softmax of ``-(c_k - d)^2 / (2 sigma^2)``: rows sum to 1 and stay finite
    for any ``sigma > 0`` (a tiny ``sigma`` gives the one-hot label of the nearest centre).
    """
    return (-(centres[None, :] - depth[:, None]).pow(2) / (2.0 * sigma ** 2)).softmax(dim=-1)


def min_pool_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    """Depth maps ``(M, h', w')`` (0: no point) brought to ``(M, *size)``.

    A finer map whose size is a whole multiple of ``size`` is min-pooled over the valid
    cells of each block (the nearest surface, as the pipeline keeps it; 0 where the block has
    none). Any other size is resampled by nearest-neighbour interpolation.
    """
    height, width = int(size[0]), int(size[1])
    if tuple(depth.shape[-2:]) == (height, width):
        return depth
    rows, cols = depth.shape[-2:]
    if rows % height == 0 and cols % width == 0:
        far = torch.where(depth > 0, depth, torch.full_like(depth, float("inf")))
        pooled = -F.max_pool2d(-far[:, None], kernel_size=(rows // height, cols // width))[:, 0]
        return torch.where(torch.isinf(pooled), torch.zeros_like(pooled), pooled)
    return F.interpolate(depth[:, None], size=(height, width), mode="nearest")[:, 0]
