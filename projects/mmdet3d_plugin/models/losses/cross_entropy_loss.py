"""Cross-entropy loss, softmax or sigmoid (mmdet ``CrossEntropyLoss``).

YOLOX's auxiliary head uses the sigmoid form with soft targets for classes and objectness:
``dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum', loss_weight=1.0)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .weighted_loss import WeightedLoss
from ...registry import MODELS

_DEFAULT_IGNORE = -100


def expand_binary_labels(
    labels: torch.Tensor, num_classes: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class indices (N,) → one-hot (N, C) and a validity mask (N, C).

    Indices outside [0, C) (background) give all-zero rows; ``ignore_index`` rows are
    marked invalid.
    """
    valid = (labels >= 0) & (labels != ignore_index)
    positive = valid & (labels < num_classes)
    one_hot = torch.zeros(labels.shape[0], num_classes, device=labels.device)
    rows = positive.nonzero().squeeze(1)
    one_hot[rows, labels[rows].long()] = 1
    return one_hot, valid[:, None].expand(-1, num_classes).float()


@MODELS.register_module()
class CrossEntropyLoss(WeightedLoss):
    """Softmax cross-entropy over classes, or per-element binary cross-entropy with logits.

    Args:
        use_sigmoid: binary cross-entropy per class (targets: indices or soft (N, C)).
        use_mask: not supported (mask heads); must be False.
        reduction: 'none', 'mean' or 'sum'.
        class_weight: per-class weights (softmax: ``weight`` of ``F.cross_entropy``;
            sigmoid: ``pos_weight`` of ``F.binary_cross_entropy_with_logits``).
        ignore_index: label ignored by the loss (default -100).
        loss_weight: factor on the reduced loss.
        avg_non_ignore: average 'mean' over non-ignored elements only.
    """

    def __init__(
        self,
        use_sigmoid: bool = False,
        use_mask: bool = False,
        reduction: str = "mean",
        class_weight: Sequence[float] | None = None,
        ignore_index: int | None = None,
        loss_weight: float = 1.0,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__(reduction, loss_weight)
        if use_mask:
            raise ValueError("CrossEntropyLoss: use_mask=True (mask cross-entropy) is not supported")
        self.use_sigmoid = use_sigmoid
        self.class_weight = None if class_weight is None else tuple(float(w) for w in class_weight)
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore

    def forward(
        self,
        cls_score: torch.Tensor,
        label: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
        ignore_index: int | None = None,
    ) -> torch.Tensor:
        """cls_score: (N, C) logits; label: (N,) indices, or (N, C) soft targets (sigmoid only).

        ``weight`` is (N,) per sample (or (N, C) with soft sigmoid targets).
        """
        ignore = ignore_index if ignore_index is not None else self.ignore_index
        ignore = _DEFAULT_IGNORE if ignore is None else ignore
        class_weight = None if self.class_weight is None else cls_score.new_tensor(self.class_weight)
        if self.use_sigmoid:
            loss, valid = self._binary(cls_score, label, class_weight, ignore)
            weight = valid if weight is None else valid * (weight[:, None] if weight.dim() == 1 else weight)
        else:
            loss = F.cross_entropy(cls_score, label.long(), weight=class_weight, reduction="none",
                                   ignore_index=ignore)
            valid = (label != ignore).float()
        reduction = self.reduction if reduction_override is None else reduction_override
        if avg_factor is None and self.avg_non_ignore and reduction == "mean":
            avg_factor = valid.sum()
        return self._reduce(loss, weight, avg_factor, reduction_override)

    @staticmethod
    def _binary(cls_score: torch.Tensor, label: torch.Tensor, class_weight: torch.Tensor | None,
                ignore: int) -> tuple[torch.Tensor, torch.Tensor]:
        if label.dim() == cls_score.dim() - 1:
            target, valid = expand_binary_labels(label, cls_score.shape[-1], ignore)
        elif label.shape == cls_score.shape:
            target, valid = label, torch.ones_like(cls_score)
        else:
            raise ValueError(f"CrossEntropyLoss: label must be (N,) indices or shaped like cls_score "
                             f"{tuple(cls_score.shape)}, got {tuple(label.shape)}")
        loss = F.binary_cross_entropy_with_logits(
            cls_score, target.to(cls_score.dtype), pos_weight=class_weight, reduction="none")
        return loss, valid
