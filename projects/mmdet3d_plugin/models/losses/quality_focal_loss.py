"""Quality focal loss (GFL; mmdet ``QualityFocalLoss``), StreamPETR's FocalHead 2D loss.

``loss_cls2d=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=2.0)``,
called with ``target=(labels, iou_scores)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .sigmoid_class_loss import SigmoidClassLoss
from ...registry import MODELS


def quality_focal_loss(
    pred: torch.Tensor, label: torch.Tensor, score: torch.Tensor, beta: float, activated: bool = False
) -> torch.Tensor:
    """Per-sample quality focal loss.

    Every class is pushed towards 0 with a BCE scaled by ``p^beta``; the labelled class of a
    positive sample is pushed towards its quality ``score`` with a BCE scaled by
    ``|score - p|^beta``.

    Args:
        pred: (N, C) logits (probabilities when ``activated``).
        label: (N,) class indices in [0, C]; C (or any index outside [0, C)) is background.
        score: (N,) quality targets in [0, 1] (e.g. IoU with the matched box).
        beta: modulating exponent.

    Returns:
        (N,) loss summed over classes.
    """
    prob = pred if activated else pred.sigmoid()
    bce = F.binary_cross_entropy if activated else F.binary_cross_entropy_with_logits
    loss = bce(pred, torch.zeros_like(pred), reduction="none") * prob.pow(beta)
    positive = ((label >= 0) & (label < pred.shape[1])).nonzero().squeeze(1)
    if positive.numel() > 0:
        pos_label = label[positive].long()
        pos_pred = pred[positive, pos_label]
        pos_score = score[positive].to(pred.dtype)
        scale = (pos_score - prob[positive, pos_label]).abs().pow(beta)
        loss = loss.index_put((positive, pos_label), bce(pos_pred, pos_score, reduction="none") * scale)
    return loss.sum(dim=1)


@MODELS.register_module()
class QualityFocalLoss(SigmoidClassLoss):
    """Quality focal loss on (N, C) class scores with (label, score) targets.

    Args:
        use_sigmoid: must be True (only the sigmoid form exists).
        beta: modulating exponent.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
        activated: ``pred`` are probabilities rather than logits.
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        beta: float = 2.0,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        activated: bool = False,
    ) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight, activated)
        self.beta = float(beta)

    def elementwise_loss(self, pred: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(N,) loss of pred (N, C) against ``target = (label (N,), score (N,))``; weight: (N,)."""
        if not isinstance(target, (tuple, list)) or len(target) != 2:
            raise ValueError("QualityFocalLoss: target must be a pair (label (N,), score (N,))")
        label, score = target
        if label.shape != pred.shape[:1] or score.shape != pred.shape[:1]:
            raise ValueError(
                f"QualityFocalLoss: label {tuple(label.shape)} and score {tuple(score.shape)} must "
                f"both be ({pred.shape[0]},) for pred {tuple(pred.shape)}"
            )
        return quality_focal_loss(pred, label, score, self.beta, self.activated)
