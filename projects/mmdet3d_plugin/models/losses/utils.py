"""Weighted reduction shared by every detection loss (mmdet semantics).

An element-wise loss is multiplied by an optional weight, then reduced:

* ``'none'``: returned as is;
* ``'sum'``: summed;
* ``'mean'``: averaged over its elements, or, given ``avg_factor``, summed and divided by
  ``avg_factor`` (e.g. the number of positive samples). ``avg_factor`` with ``'sum'`` is an
  error. The mean of an empty loss is 0 (kept in the autograd graph), never NaN.
"""
from __future__ import annotations

import torch
from torch import nn

REDUCTIONS = ("none", "mean", "sum")


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
    """Base of the detection losses: holds ``reduction`` and ``loss_weight``.

    Args:
        reduction: default reduction, 'none', 'mean' or 'sum'.
        loss_weight: factor applied to the reduced loss.
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, type(self).__name__)
        self.loss_weight = float(loss_weight)

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
