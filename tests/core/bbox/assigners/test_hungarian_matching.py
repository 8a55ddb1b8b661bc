"""Shared Hungarian steps: optimal matching, non-finite costs, rectangular problems."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.assigners.hungarian_matching import (
    build_match_cost,
    match_by_cost,
)
from projects.mmdet3d_plugin.core.bbox.match_costs.bbox3d_l1_cost import BBox3DL1Cost


def test_optimal_not_greedy():
    # greedy on row 0 would take column 0 (cost 1) and force row 1 onto column 1 (cost 10)
    cost = torch.tensor([[1.0, 2.0], [1.5, 10.0], [50.0, 50.0]])
    result = match_by_cost(cost, torch.tensor([7, 8]))
    assert result.gt_inds.tolist() == [2, 1, 0]
    assert result.labels.tolist() == [8, 7, -1]
    assert result.num_gts == 2


def test_non_finite_costs_do_not_crash():
    cost = torch.tensor([[float("nan"), 0.0], [float("inf"), float("-inf")], [1.0, 2.0]])
    result = match_by_cost(cost, torch.tensor([0, 1]))
    assert sorted(result.gt_inds.tolist()) == [0, 1, 2]


def test_more_gts_than_queries():
    cost = torch.tensor([[3.0, 0.0, 1.0]])
    result = match_by_cost(cost, torch.tensor([4, 5, 6]))
    assert result.gt_inds.tolist() == [2] and result.labels.tolist() == [5]


def test_build_match_cost_accepts_dicts_objects_and_none():
    built = build_match_cost(dict(type="BBox3DL1Cost", weight=2.0))
    assert isinstance(built, BBox3DL1Cost) and built.weight == 2.0
    assert build_match_cost(built) is built
    assert build_match_cost(None) is None
    with pytest.raises(TypeError, match="match cost"):
        build_match_cost(3)
