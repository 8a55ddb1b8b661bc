"""Masked generative distillation (MGD; Yang et al., "Masked Generative Distillation",
ECCV 2022).

A random fraction ``lambda_mgd`` of the student's spatial positions is zeroed, and a small
generation block (conv3x3 - ReLU - conv3x3) must rebuild the full teacher feature map from
what is left::

    M[n, 0, h, w] = 0 with probability lambda_mgd, else 1
    L = w * alpha_mgd * sum((G(S * M) - T)^2) / N

The generation block is trained with the student and is part of this loss module, so it is
saved in the distiller's state dict under the loss's name. The mask draws from torch's
global generator, which the engine seeds.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .feature_utils import check_non_negative, prepare_feature_pair
from ...registry import MODELS


@MODELS.register_module()
class MGDLoss(nn.Module):
    """Masked generative feature distillation with a trainable generation block.

    Args:
        channels: channels ``C`` of the teacher map (and of the adapted student map).
        alpha_mgd: MGD's coefficient on the summed squared error (2e-5 in the paper's
            detection configs).
        lambda_mgd: fraction of spatial positions masked, in ``[0, 1)``.
        loss_weight: common outer factor of every distillation loss.
    """

    def __init__(
        self,
        channels: int,
        alpha_mgd: float = 2e-5,
        lambda_mgd: float = 0.65,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if channels < 1:
            raise ValueError(f"{name}: channels must be >= 1, got {channels}")
        if not 0.0 <= lambda_mgd < 1.0:
            raise ValueError(f"{name}: lambda_mgd (masked fraction) must be in [0, 1), got {lambda_mgd}")
        self.channels = int(channels)
        self.alpha_mgd = check_non_negative(alpha_mgd, "alpha_mgd", name)
        self.lambda_mgd = float(lambda_mgd)
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", name)
        self.generation = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        )

    def random_keep_mask(self, features: Tensor) -> Tensor:
        """``(N, 1, H, W)`` mask of ``features`` ``(N, C, H, W)``: 0 with probability ``lambda_mgd``."""
        num, _, height, width = features.shape
        draws = torch.rand((num, 1, height, width), device=features.device)
        return (draws >= self.lambda_mgd).to(features.dtype)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Weighted MGD loss.

        Args:
            student: ``(N, C, H, W)`` student feature map, ``C == channels``.
            teacher: ``(N, C, H_t, W_t)`` teacher map; detached, resized to ``(H, W)``.

        Returns:
            Scalar loss, already multiplied by ``alpha_mgd`` and ``loss_weight``.
        """
        student, teacher = prepare_feature_pair(student, teacher, type(self).__name__)
        if student.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__}: built with channels={self.channels}, got student "
                f"{tuple(student.shape)} and teacher {tuple(teacher.shape)}"
            )
        masked = student * self.random_keep_mask(student)
        generated = self.generation(masked.to(self.generation[0].weight.dtype))
        squared_error = (generated.float() - teacher).pow(2).sum() / student.shape[0]
        return self.loss_weight * self.alpha_mgd * squared_error

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return (
            f"channels={self.channels}, alpha_mgd={self.alpha_mgd}, "
            f"lambda_mgd={self.lambda_mgd}, loss_weight={self.loss_weight}"
        )
