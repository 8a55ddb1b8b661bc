"""Focal-loss classification cost for Hungarian matching (mmdet ``FocalLossCost``)."""
from __future__ import annotations

from torch import Tensor

from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class FocalLossCost:
    """Cost of labelling each query with each GT's class under a sigmoid focal loss.

    ``cost[q, g] = weight * (pos(p[q, c_g]) - neg(p[q, c_g]))`` with ``p = sigmoid(logits)``,
    ``pos(p) = -alpha * (1 - p) ** gamma * log(p + eps)`` and
    ``neg(p) = -(1 - alpha) * p ** gamma * log(1 - p + eps)``.

    Args:
        weight: scale of the cost.
        alpha: focal-loss balance of positives.
        gamma: focal-loss focusing exponent.
        eps: added inside the logarithms.
    """

    def __init__(
        self, weight: float = 1.0, alpha: float = 0.25, gamma: float = 2, eps: float = 1e-12
    ) -> None:
        self.weight = weight
        self.alpha = alpha
        self.gamma = gamma
        self.eps = eps

    def __call__(self, cls_pred: Tensor, gt_labels: Tensor) -> Tensor:
        """``cls_pred (Q, C)`` logits, ``gt_labels (M,)`` -> cost ``(Q, M)``."""
        prob = cls_pred.sigmoid()
        neg_cost = -(1 - prob + self.eps).log() * (1 - self.alpha) * prob.pow(self.gamma)
        pos_cost = -(prob + self.eps).log() * self.alpha * (1 - prob).pow(self.gamma)
        return (pos_cost[:, gt_labels] - neg_cost[:, gt_labels]) * self.weight
