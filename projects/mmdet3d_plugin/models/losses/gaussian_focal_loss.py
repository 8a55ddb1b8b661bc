"""Gaussian focal loss on heatmaps (CenterNet; mmdet ``GaussianFocalLoss``).

StreamPETR's FocalHead scores its centerness map with
``loss_centerness=dict(type='GaussianFocalLoss', reduction='mean', loss_weight=1.0)``.
"""
from __future__ import annotations

import torch

from .weighted_loss import WeightedLoss, check_same_shape
from ...registry import MODELS

_EPS = 1e-12


def gaussian_focal_loss(
    pred: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float,
    pos_weight: float = 1.0, neg_weight: float = 1.0,
) -> torch.Tensor:
    """Element-wise Gaussian focal loss.

    Args:
        pred: (...) probabilities in (0, 1).
        target: (...) Gaussian heatmap in [0, 1]; exactly 1 at object centres (positives).
        alpha: exponent on the prediction error.
        gamma: exponent of the ``(1 - target)`` down-weighting of negatives near centres.

    Returns:
        (...) ``-(1-p)^alpha log(p)`` at positives plus
        ``-(1-t)^gamma p^alpha log(1-p)`` everywhere else.
    """
    positive = target.eq(1).to(pred.dtype)
    neg_factor = (1 - target).pow(gamma)
    pos_loss = -(pred + _EPS).log() * (1 - pred).pow(alpha) * positive
    neg_loss = -(1 - pred + _EPS).log() * pred.pow(alpha) * neg_factor
    return pos_weight * pos_loss + neg_weight * neg_loss


@MODELS.register_module()
class GaussianFocalLoss(WeightedLoss):
    """Focal loss against a Gaussian target heatmap (predictions already sigmoid-ed).

    Args:
        alpha: exponent on the prediction error.
        gamma: exponent of the negative down-weighting.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
        pos_weight, neg_weight: factors on the positive and negative terms.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        gamma: float = 4.0,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        pos_weight: float = 1.0,
        neg_weight: float = 1.0,
    ) -> None:
        super().__init__(reduction, loss_weight)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.pos_weight = float(pos_weight)
        self.neg_weight = float(neg_weight)

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: same shape, e.g. (B, H*W, 1), as the loss; ``forward``'s weight: same or (B,)."""
        check_same_shape(pred, target, type(self).__name__)
        return gaussian_focal_loss(pred, target, self.alpha, self.gamma, self.pos_weight, self.neg_weight)
