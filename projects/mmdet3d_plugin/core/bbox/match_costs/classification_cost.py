"""Softmax classification cost for Hungarian matching (mmdet ``ClassificationCost``)."""
from __future__ import annotations

from torch import Tensor

from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class ClassificationCost:
    """``cost[q, g] = -weight * softmax(logits[q])[c_g]``.

    Args:
        weight: scale of the cost.
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, cls_pred: Tensor, gt_labels: Tensor) -> Tensor:
        """``cls_pred (Q, C)`` logits, ``gt_labels (M,)`` -> cost ``(Q, M)``."""
        return -cls_pred.softmax(-1)[:, gt_labels] * self.weight
