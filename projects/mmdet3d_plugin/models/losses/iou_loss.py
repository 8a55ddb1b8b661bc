"""IoU-based box losses on aligned 2D boxes (mmdet ``IoULoss`` and ``GIoULoss``).

StreamPETR's FocalHead uses ``loss_iou2d=dict(type='GIoULoss', loss_weight=2.0)``;
YOLOX uses ``loss_bbox=dict(type='IoULoss', mode='square', eps=1e-16, reduction='sum',
loss_weight=5.0)``. Boxes are (x1, y1, x2, y2) in pixels.
"""
from __future__ import annotations

import torch

from ...core.bbox.box_ops import bbox_overlaps
from .weighted_loss import WeightedLoss, check_same_shape
from ...registry import MODELS

_IOU_MODES = ("linear", "square", "log")


class _BoxOverlapLoss(WeightedLoss):
    """Shared forward: (N, 4) weights are averaged per box; all-zero weights give 0."""

    def __init__(self, eps: float, reduction: str, loss_weight: float) -> None:
        super().__init__(reduction, loss_weight)
        self.eps = float(eps)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """pred, target: (N, 4) xyxy; weight: (N,) or (N, 4). Returns a scalar (or (N,) for 'none')."""
        check_same_shape(pred, target, type(self).__name__)
        if weight is not None and weight.dim() > 1:
            check_same_shape(weight, pred, f"{type(self).__name__} weight")
            weight = weight.mean(dim=-1)
        if weight is not None and not bool((weight > 0).any()):
            return pred.sum() * 0
        return super().forward(pred, target, weight, avg_factor, reduction_override)


@MODELS.register_module()
class IoULoss(_BoxOverlapLoss):
    """``1 - IoU`` ('linear'), ``1 - IoU²`` ('square') or ``-log IoU`` ('log').

    Args:
        mode: 'linear', 'square' or 'log'.
        eps: lower bound of the union and of the IoU inside the log.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
    """

    def __init__(
        self, mode: str = "log", eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0
    ) -> None:
        super().__init__(eps, reduction, loss_weight)
        if mode not in _IOU_MODES:
            raise ValueError(f"IoULoss: mode must be one of {_IOU_MODES}, got {mode!r}")
        self.mode = mode

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (N, 4) xyxy (shapes checked by ``forward``) -> (N,) loss per box."""
        ious = bbox_overlaps(pred, target, "iou", is_aligned=True, eps=self.eps).clamp(min=self.eps)
        if self.mode == "linear":
            return 1 - ious
        if self.mode == "square":
            return 1 - ious.pow(2)
        return -ious.log()


@MODELS.register_module()
class GIoULoss(_BoxOverlapLoss):
    """``1 - GIoU`` of aligned boxes.

    Args:
        eps: lower bound of the union and the enclosing area.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: factor on the reduced loss.
    """

    def __init__(self, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(eps, reduction, loss_weight)

    def elementwise_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (N, 4) xyxy (shapes checked by ``forward``) -> (N,) loss per box."""
        return 1 - bbox_overlaps(pred, target, "giou", is_aligned=True, eps=self.eps)
