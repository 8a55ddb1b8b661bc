"""The base of the sigmoid classification losses (focal, quality focal): only the sigmoid form."""
from __future__ import annotations

from .weighted_loss import WeightedLoss


class SigmoidClassLoss(WeightedLoss):
    """A :class:`WeightedLoss` on per-class sigmoid scores, from logits or probabilities.

    Args:
        use_sigmoid: must be True (mmdet's flag; only the sigmoid form exists).
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
        activated: ``pred`` are probabilities rather than logits.
    """

    def __init__(self, use_sigmoid: bool, reduction: str, loss_weight: float, activated: bool) -> None:
        super().__init__(reduction, loss_weight)
        if not use_sigmoid:
            raise ValueError(f"{type(self).__name__}: only use_sigmoid=True (the sigmoid form) is supported")
        self.use_sigmoid = use_sigmoid
        self.activated = activated
