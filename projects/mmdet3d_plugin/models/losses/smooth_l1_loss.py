"""Smooth L1 (Huber-like) loss, mmdet ``SmoothL1Loss``."""
from __future__ import annotations

import torch

from .weighted_loss import WeightedLoss, check_same_shape
from ...registry import MODELS


@MODELS.register_module()
class SmoothL1Loss(WeightedLoss):
    """``0.5 d² / beta`` where ``d = |pred - target| < beta``, else ``d - 0.5 beta``.

    Args:
        beta: the switch point (> 0).
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        if beta <= 0:
            raise ValueError(f"SmoothL1Loss: beta must be > 0, got {beta}")
        self.beta = float(beta)

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (N, D) -> (N, D) loss; ``forward``'s weight: (N, D) or (N,)."""
        check_same_shape(pred, target, type(self).__name__)
        diff = (pred - target).abs()
        return torch.where(diff < self.beta, 0.5 * diff * diff / self.beta, diff - 0.5 * self.beta)
