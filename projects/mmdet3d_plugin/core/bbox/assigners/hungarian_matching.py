"""Shared steps of the Hungarian assigners: building costs and solving the matching."""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

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


def match_by_cost(cost: Tensor, gt_labels: Tensor) -> AssignResult:
    """Solve the one-to-one matching of minimum total cost.

    Args:
        cost: ``(Q, M)`` cost of assigning prediction ``q`` to ground truth ``m``;
            NaN and +inf become 100, -inf becomes -100 (as upstream).
        gt_labels: ``(M,)`` classes of the ground truth.

    Returns:
        The assignment: ``min(Q, M)`` predictions are foreground, the rest background.
    """
    from scipy.optimize import linear_sum_assignment  # imported here: keeps package import fast

    num_queries, num_gts = cost.shape
    cost = torch.nan_to_num(cost.detach().float(), nan=100.0, posinf=100.0, neginf=-100.0)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    rows = torch.as_tensor(rows, dtype=torch.long, device=gt_labels.device)
    cols = torch.as_tensor(cols, dtype=torch.long, device=gt_labels.device)
    result = empty_assignment(num_queries, num_gts, gt_labels.device)
    result.gt_inds[rows] = cols + 1
    result.labels[rows] = gt_labels[cols].long()
    return result
