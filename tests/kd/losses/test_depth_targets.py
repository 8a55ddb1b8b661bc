"""Depth bins, one-hot / Gaussian depth labels and depth-map pooling (kd/losses/depth_targets.py)."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.depth_targets import (depth_bin_edges, gaussian_labels, min_pool_depth,
                                                             one_hot_labels)


def test_uniform_and_lid_edges_span_the_range() -> None:
    uniform = depth_bin_edges((2.0, 10.0), 4)
    assert torch.allclose(uniform, torch.tensor([2.0, 4.0, 6.0, 8.0, 10.0]))
    lid = depth_bin_edges((2.0, 10.0), 4, "lid")
    widths = lid.diff()
    assert lid[0] == 2.0 and lid[-1] == pytest.approx(10.0) and (widths.diff() > 0).all()
    with pytest.raises(ValueError, match="spacing"):
        depth_bin_edges((2.0, 10.0), 4, "log")


def test_gaussian_labels_sum_to_one_and_peak_at_the_true_bin() -> None:
    edges = depth_bin_edges((1.0, 61.0), 60)
    centres = (edges[:-1] + edges[1:]) / 2
    depth = torch.tensor([1.0, 7.3, 33.9, 61.0])
    labels = gaussian_labels(depth, centres, sigma=1.5)
    assert labels.shape == (4, 60)
    assert torch.allclose(labels.sum(-1), torch.ones(4))
    assert labels.argmax(-1).tolist() == one_hot_labels(depth, edges).argmax(-1).tolist() == [0, 6, 32, 59]


def test_one_hot_is_the_gaussian_in_the_small_sigma_limit() -> None:
    edges = depth_bin_edges((1.0, 61.0), 60)
    centres = (edges[:-1] + edges[1:]) / 2
    depth = torch.rand(50) * 60 + 1
    assert torch.allclose(gaussian_labels(depth, centres, sigma=1e-3), one_hot_labels(depth, edges), atol=1e-6)
    assert not torch.allclose(gaussian_labels(depth, centres, sigma=1.0), one_hot_labels(depth, edges), atol=0.1)


def test_min_pooling_keeps_the_nearest_valid_depth_of_each_block() -> None:
    depth = torch.tensor([[[0.0, 5.0, 0.0, 0.0],
                           [3.0, 0.0, 0.0, 0.0]]])
    assert min_pool_depth(depth, (1, 2)).tolist() == [[[3.0, 0.0]]]
    assert min_pool_depth(depth, (2, 4)) is depth
    assert min_pool_depth(depth, (4, 8)).shape == (1, 4, 8)  # coarser: nearest resampling
