"""FitNets hint loss (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015).

The mean squared error between a student tensor (already projected to the teacher's
channels by a distiller adapter when they differ) and the teacher's::

    L = w * mean((S - T)^2)

It takes feature maps ``(N, C, H, W)`` (the teacher is resized bilinearly to the student's
``H, W``) and token tensors such as decoder queries ``(B, Q, C)`` (shapes must match).
"""
from __future__ import annotations

from torch import Tensor, nn

from projects.mmdet3d_plugin.kd.losses.feature_utils import check_non_negative, prepare_feature_pair
from projects.mmdet3d_plugin.registry import MODELS


@MODELS.register_module()
class FitNetsLoss(nn.Module):
    """Mean squared error between student and teacher features.

    Args:
        loss_weight: factor on the mean squared error.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", type(self).__name__)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Weighted MSE.

        Args:
            student: ``(N, C, H, W)`` feature map or ``(B, Q, C)`` / ``(B, C)`` tokens.
            teacher: same shape as the student, except that a feature map's ``H, W`` may
                differ (it is then resized to the student's); detached inside.

        Returns:
            Scalar loss, already multiplied by ``loss_weight``; 0 for identical inputs.
        """
        name = type(self).__name__
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

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return f"loss_weight={self.loss_weight}"
