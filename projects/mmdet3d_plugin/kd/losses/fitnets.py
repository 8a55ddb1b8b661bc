"""FitNets hint loss (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015).

The mean squared error between a student tensor (already projected to the teacher's
channels by a distiller adapter when they differ) and the teacher's::

    L = w * mean((S - T)^2)

It takes feature maps ``(N, C, H, W)`` (the teacher is resized bilinearly to the student's
``H, W``) and token tensors such as decoder queries ``(B, Q, C)`` (shapes must match). In
training the student's query tensors start with its denoising (DN) queries, which the teacher
(in eval) has not: ``num_queries=Q`` keeps the last ``Q`` queries of both sides.

:meth:`FitNetsLoss.weighted` weighs the squared error of each cell of a feature map by a
per-cell weight ``m`` of mean 1 per sample (a uniform ``m`` gives the loss above)::

    L = w * mean(m * (S - T)^2)
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from .feature_utils import check_non_negative, normalise_cell_weights, prepare_feature_pair
from .query_matching import take_last_queries
from ...registry import MODELS


@MODELS.register_module()
class FitNetsLoss(nn.Module):
    """Mean squared error between student and teacher features.

    Args:
        loss_weight: factor on the mean squared error.
        num_queries: for query tokens ``(B, Q, C)``: keep the last ``num_queries`` queries of
            the student and of the teacher (drops the student's DN queries); None keeps all.
            Must be None for feature maps.
    """

    def __init__(self, loss_weight: float = 1.0, num_queries: Optional[int] = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", name)
        if num_queries is not None and (isinstance(num_queries, bool) or int(num_queries) != num_queries
                                        or num_queries <= 0):
            raise ValueError(f"{name}: num_queries must be None or a positive int, got {num_queries!r}")
        self.num_queries = num_queries

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Weighted MSE.

        Args:
            student: ``(N, C, H, W)`` feature map or ``(B, Q, C)`` / ``(B, C)`` tokens.
            teacher: same shape as the student (after ``num_queries`` for tokens), except
                that a feature map's ``H, W`` may differ (it is then resized to the
                student's); detached inside.

        Returns:
            Scalar loss, already multiplied by ``loss_weight``; 0 for identical inputs.
        """
        name = type(self).__name__
        if self.num_queries is not None:
            if student.dim() != 3:
                raise ValueError(f"{name}: num_queries applies to query tokens (B, Q, C), got a "
                                 f"student of shape {tuple(student.shape)}")
            student = take_last_queries(student, self.num_queries, "student")
            teacher = take_last_queries(teacher, self.num_queries, "teacher")
        if student.dim() == 4:
            student, teacher = prepare_feature_pair(student, teacher, name)
        elif student.dim() in (2, 3) and student.shape == teacher.shape:
            student, teacher = student.float(), teacher.detach().float()
        else:
            raise ValueError(
                f"{name}: expects feature maps (N, C, H, W) or tokens (B, Q, C) / (B, C) of the "
                f"same shape (channels last for tokens; an adapter fixes a channel mismatch), "
                f"got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
            )
        return self.loss_weight * (student - teacher).pow(2).mean()

    def weighted(self, student: Tensor, teacher: Tensor, weight: Tensor) -> Tensor:
        """Per-cell weighted MSE of feature maps.

        Args:
            student: ``(N, C, H, W)``; teacher: ``(N, C, H_t, W_t)`` (detached, resized).
            weight: ``(N, H, W)`` cell weights, normalised to mean 1 per sample inside.

        Returns:
            Scalar ``loss_weight * mean(weight * (S - T)^2)``; equals :meth:`forward` for a
            uniform weight.
        """
        student, teacher = prepare_feature_pair(student, teacher, type(self).__name__)
        weight = normalise_cell_weights(weight, student, type(self).__name__)
        return self.loss_weight * ((student - teacher).pow(2) * weight).mean()

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return f"loss_weight={self.loss_weight}, num_queries={self.num_queries}"
