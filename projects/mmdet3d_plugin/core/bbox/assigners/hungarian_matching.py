"""Shared steps of the Hungarian assigners: building costs and solving the matching."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .assign_result import AssignResult
from ....registry import TASK_UTILS

MatchCost = Callable[..., Tensor]


def build_match_cost(cfg: Union[dict, MatchCost, None]) -> Optional[MatchCost]:
    """Build a match cost from ``dict(type=...)``; built costs and None pass through."""
    if cfg is None or callable(cfg):
        return cfg
    if isinstance(cfg, dict):
        return TASK_UTILS.build(cfg)
    raise TypeError(f"a match cost must be a config dict or a callable, got {cfg!r}")


def empty_assignment(num_queries: int, num_gts: int, device: Any) -> AssignResult:
    """Assignment when there is nothing to match: every prediction is background."""
    return AssignResult(
        num_gts=num_gts,
        gt_inds=torch.zeros(num_queries, dtype=torch.long, device=device),
        labels=torch.full((num_queries,), -1, dtype=torch.long, device=device),
    )


@dataclass
class Matching:
    """A solved one-to-one matching, on the host.

    Attributes:
        rows: ``(P,)`` int64 matched prediction indices, ascending (scipy's order).
        cols: ``(P,)`` int64 ground-truth index of each matched prediction.
        num_queries: ``Q``; num_gts: ``M`` (``P = min(Q, M)``).
    """

    rows: np.ndarray
    cols: np.ndarray
    num_queries: int
    num_gts: int


def solve_matchings(costs: Sequence[Tensor]) -> list[Matching]:
    """Solve the minimum-cost matching of many cost matrices with ONE device -> host copy.

    Args:
        costs: ``(Q_i, M_i)`` costs on one device; NaN and +inf become 100, -inf -100 (as
            upstream). Empty matrices match nothing.

    Returns:
        One :class:`Matching` per cost, in order.
    """
    from scipy.optimize import linear_sum_assignment  # imported here: keeps package import fast

    filled = [cost for cost in costs if cost.numel()]
    flat = np.empty(0, dtype=np.float32)
    if filled:
        flat = torch.nan_to_num(torch.cat([cost.detach().float().reshape(-1) for cost in filled]),
                                nan=100.0, posinf=100.0, neginf=-100.0).cpu().numpy()
    matchings, start = [], 0
    for cost in costs:
        num_queries, num_gts = cost.shape
        rows = cols = np.empty(0, dtype=np.int64)
        if cost.numel():
            block = flat[start:start + num_queries * num_gts].reshape(num_queries, num_gts)
            rows, cols = (index.astype(np.int64) for index in linear_sum_assignment(block))
            start += block.size
        matchings.append(Matching(rows, cols, num_queries, num_gts))
    return matchings


def indices_to_device(arrays: Sequence[np.ndarray], device: Any) -> list[Tensor]:
    """Int64 host arrays as device tensors with ONE host -> device copy.

    On CUDA the copy goes from pinned memory without blocking the host.
    """
    flat = torch.from_numpy(np.concatenate([np.empty(0, dtype=np.int64), *arrays]).astype(np.int64))
    device = torch.device(device)
    if device.type == "cuda":
        flat = flat.pin_memory().to(device, non_blocking=True)
    else:
        flat = flat.to(device)
    return list(torch.split(flat, [len(array) for array in arrays]))


def assign_results(matchings: Sequence[Matching], gt_labels: Sequence[Tensor]) -> list[AssignResult]:
    """:class:`AssignResult` of every matching (labels from ``gt_labels[i]`` ``(M_i,)``),
    with one host -> device copy of all indices."""
    indices = indices_to_device([a for m in matchings for a in (m.rows, m.cols)],
                                gt_labels[0].device if gt_labels else "cpu")
    results = []
    for i, (matching, labels) in enumerate(zip(matchings, gt_labels)):
        rows, cols = indices[2 * i], indices[2 * i + 1]
        result = empty_assignment(matching.num_queries, matching.num_gts, labels.device)
        result.gt_inds[rows] = cols + 1
        result.labels[rows] = labels[cols].long()
        results.append(result)
    return results


def match_by_cost(cost: Tensor, gt_labels: Tensor) -> AssignResult:
    """Solve the one-to-one matching of minimum total cost.

    Args:
        cost: ``(Q, M)`` cost of assigning prediction ``q`` to ground truth ``m``;
            NaN and +inf become 100, -inf becomes -100 (as upstream).
        gt_labels: ``(M,)`` classes of the ground truth.

    Returns:
        The assignment: ``min(Q, M)`` predictions are foreground, the rest background.
    """
    return assign_results(solve_matchings([cost]), [gt_labels])[0]


def flat_match_indices(matchings: Sequence[Matching], num_queries: int,
                       gt_counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Matchings of ``N`` items (samples or images) as indices into the flat batch.

    Args:
        matchings: one per item, each over ``num_queries`` predictions.
        gt_counts: ``M_i`` of every item.

    Returns:
        ``pos_index (P,)`` into the ``N * num_queries`` predictions (item-major, ascending
        queries) and ``gt_index (P,)`` into the items' concatenated ground truth.
    """
    gt_starts = np.cumsum([0, *gt_counts[:-1]], dtype=np.int64)
    pos = [m.rows + i * num_queries for i, m in enumerate(matchings)]
    gts = [m.cols + start for m, start in zip(matchings, gt_starts)]
    empty = np.empty(0, dtype=np.int64)
    return np.concatenate([empty, *pos]), np.concatenate([empty, *gts])
