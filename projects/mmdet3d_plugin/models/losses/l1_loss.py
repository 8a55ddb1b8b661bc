"""L1 loss (mmdet ``L1Loss``), e.g. ``loss_bbox=dict(type='L1Loss', loss_weight=0.25)``."""
from __future__ import annotations

import torch

from .weighted_loss import WeightedLoss, check_same_shape
from ...registry import MODELS


@MODELS.register_module()
class L1Loss(WeightedLoss):
    """``|pred - target|``, weighted and reduced.

    Args:
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (N, D) -> (N, D) loss; ``forward``'s weight: (N, D) or (N,)."""
        check_same_shape(pred, target, type(self).__name__)
        return (pred - target).abs()
