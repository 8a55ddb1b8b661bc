"""Sigmoid focal loss (mmdet ``FocalLoss``), StreamPETR's / RayDN's classification loss.

``loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .sigmoid_class_loss import SigmoidClassLoss
from ...registry import MODELS


def one_hot_targets(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices (N,) in [0, num_classes] → one-hot (N, num_classes) float.

    Index ``num_classes`` is background and becomes an all-zero row.
    """
    return F.one_hot(target.long(), num_classes + 1)[:, :num_classes].float()


def sigmoid_focal_loss(
    pred: torch.Tensor, target: torch.Tensor, gamma: float, alpha: float, activated: bool = False
) -> torch.Tensor:
    """Element-wise focal loss.

    Args:
        pred: (N, C) logits, or probabilities when ``activated``.
        target: (N, C) binary (or soft) targets.
        gamma: focusing exponent on ``1 - p_t``.
        alpha: weight of positives (``1 - alpha`` for negatives).

    Returns:
        (N, C) ``-alpha_t (1 - p_t)^gamma log(p_t)``.
    """
    if activated:
        prob = pred
        ce = F.binary_cross_entropy(pred, target, reduction="none")
    else:
        prob = pred.sigmoid()
        ce = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
    one_minus_pt = prob * (1 - target) + (1 - prob) * target
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return ce * alpha_t * one_minus_pt.pow(gamma)


@MODELS.register_module()
class FocalLoss(SigmoidClassLoss):
    """Sigmoid focal loss for dense or query classification.

    Args:
        use_sigmoid: must be True (only the sigmoid form exists, as in mmdet).
        gamma: focusing exponent.
        alpha: positive/negative balance.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
        activated: ``pred`` are probabilities rather than logits.
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        gamma: float = 2.0,
        alpha: float = 0.25,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        activated: bool = False,
    ) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight, activated)
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(N, C) focal loss of (N, C) scores; ``forward``'s weight is (N,) or (N, C).

        Args:
            pred: (N, C) logits (probabilities when ``activated``).
            target: (N,) class indices in [0, C], C meaning background; or (N, C) one-hot.
        """
        if target.dim() == pred.dim() - 1:
            target = one_hot_targets(target, pred.shape[-1])
        elif target.shape != pred.shape:
            raise ValueError(
                f"FocalLoss: target must be (N,) class indices or (N, C) like pred "
                f"{tuple(pred.shape)}, got {tuple(target.shape)}"
            )
        return sigmoid_focal_loss(pred, target.to(pred.dtype), self.gamma, self.alpha, self.activated)
