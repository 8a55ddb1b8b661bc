"""The result of assigning predictions to ground truth."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class AssignResult:
    """Which ground truth each prediction is assigned to (mmdet conventions).

    Attributes:
        num_gts: number of ground-truth boxes ``M``.
        gt_inds: ``(Q,)`` int64; 0 = background, ``i + 1`` = ground truth ``i``
            (-1 = ignored, which the Hungarian assigners never produce).
        labels: ``(Q,)`` int64 class of the assigned ground truth, -1 for background.
        max_overlaps: ``(Q,)`` overlap with the assigned ground truth, when the assigner
            computes one; None otherwise.
    """

    num_gts: int
    gt_inds: Tensor
    labels: Tensor
    max_overlaps: Optional[Tensor] = None

    @property
    def pos_inds(self) -> Tensor:
        """``(P,)`` indices of the predictions assigned to a ground truth."""
        return torch.nonzero(self.gt_inds > 0, as_tuple=False).squeeze(-1)

    @property
    def neg_inds(self) -> Tensor:
        """``(Q - P,)`` indices of the background predictions."""
        return torch.nonzero(self.gt_inds == 0, as_tuple=False).squeeze(-1)

    @property
    def pos_assigned_gt_inds(self) -> Tensor:
        """``(P,)`` 0-based ground-truth index of each prediction in :attr:`pos_inds`."""
        return self.gt_inds[self.pos_inds] - 1
