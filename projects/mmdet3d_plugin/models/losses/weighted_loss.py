"""The base of every detection loss: its ``forward`` and the weighted reduction (mmdet semantics).

A loss computes an element-wise loss (:meth:`WeightedLoss.elementwise_loss`); the base's
``forward(pred, target, weight, avg_factor, reduction_override)`` checks nothing else,
weights it and reduces it.

An element-wise loss is multiplied by an optional weight, then reduced:

* ``'none'``: returned as is;
* ``'sum'``: summed;
* ``'mean'``: averaged over its elements, or, given ``avg_factor``, summed and divided by
  ``avg_factor`` (e.g. the number of positive samples). ``avg_factor`` with ``'sum'`` is an
  error. The mean of an empty loss is 0 (kept in the autograd graph), never NaN.
"""
from __future__ import annotations

from typing import Union

import torch
from torch import nn

REDUCTIONS = ("none", "mean", "sum")
#: What a loss compares ``pred`` with: a tensor, or a tuple of them (``(label, score)``).
LossTarget = Union[torch.Tensor, tuple[torch.Tensor, ...]]


def check_reduction(reduction: str, owner: str) -> str:
    """Return ``reduction`` if it is one of :data:`REDUCTIONS`, else raise naming ``owner``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def expand_weight(weight: torch.Tensor, loss: torch.Tensor, owner: str) -> torch.Tensor:
    """Broadcast a per-sample weight (N,) to an element-wise loss (N, ...).

    A weight of the loss's own shape (or one that broadcasts to it) is returned unchanged.
    """
    if weight.dim() == 1 and loss.dim() > 1 and weight.shape[0] == loss.shape[0]:
        weight = weight.reshape(-1, *([1] * (loss.dim() - 1)))
    try:
        torch.broadcast_shapes(weight.shape, loss.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{owner}: weight of shape {tuple(weight.shape)} does not fit the loss of shape "
            f"{tuple(loss.shape)} (expected the same shape, or (N,) per sample)"
        ) from err
    return weight


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce an element-wise loss by ``'none'``, ``'mean'`` or ``'sum'``."""
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.numel() == 0:
        return loss.sum()
    return loss.mean()


def weight_reduce_loss(
    loss: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: float | torch.Tensor | None = None,
    owner: str = "loss",
) -> torch.Tensor:
    """Apply an element-wise weight, then reduce (see the module doc).

    Args:
        loss: element-wise loss, any shape (N, ...).
        weight: same shape as ``loss``, or (N,) per sample; None for no weight.
        reduction: 'none', 'mean' or 'sum'.
        avg_factor: divisor replacing the element count of 'mean'.
        owner: the loss's name, for error messages.
    """
    if weight is not None:
        loss = loss * expand_weight(weight, loss, owner)
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    if reduction == "mean":
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    if reduction == "none":
        return loss
    raise ValueError(f"{owner}: avg_factor cannot be used with reduction='sum'")


class WeightedLoss(nn.Module):
    """Base of the detection losses: holds ``reduction`` and ``loss_weight``, owns ``forward``.

    A subclass implements :meth:`elementwise_loss` (and validates its inputs there).

    Args:
        reduction: default reduction, 'none', 'mean' or 'sum'.
        loss_weight: factor applied to the reduced loss.
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, type(self).__name__)
        self.loss_weight = float(loss_weight)

    def forward(
        self,
        pred: torch.Tensor,
        target: LossTarget,
        weight: torch.Tensor | None = None,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The element-wise loss of ``pred`` against ``target``, weighted, reduced and scaled.

        Args:
            pred: the prediction, e.g. (N, C) scores or (N, D) boxes.
            target: what :meth:`elementwise_loss` of the subclass takes.
            weight: shaped like the element-wise loss, or (N,) per sample; None for no weight.
            avg_factor: divisor replacing the element count of 'mean'.
            reduction_override: 'none', 'mean' or 'sum' for this call instead of ``reduction``.

        Returns:
            A scalar, or the weighted element-wise loss for 'none'.
        """
        loss = self.elementwise_loss(pred, target)
        return self._reduce(loss, weight, avg_factor, reduction_override)

    def elementwise_loss(self, pred: torch.Tensor, target: LossTarget) -> torch.Tensor:
        """The unreduced loss of ``pred`` against ``target`` (implemented by each loss)."""
        raise NotImplementedError(f"{type(self).__name__} must implement elementwise_loss")

    def _reduce(
        self,
        loss: torch.Tensor,
        weight: torch.Tensor | None,
        avg_factor: float | torch.Tensor | None,
        reduction_override: str | None,
    ) -> torch.Tensor:
        """Weight, reduce (``reduction_override`` wins over ``reduction``) and scale."""
        name = type(self).__name__
        reduction = self.reduction
        if reduction_override is not None:
            reduction = check_reduction(reduction_override, name)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor, name)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, loss_weight={self.loss_weight}"


def check_same_shape(pred: torch.Tensor, target: torch.Tensor, owner: str) -> None:
    """Raise when prediction and target shapes differ."""
    if pred.shape != target.shape:
        raise ValueError(
            f"{owner}: pred shape {tuple(pred.shape)} and target shape {tuple(target.shape)} must match"
        )
