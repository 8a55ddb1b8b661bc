"""Focal and global distillation (FGD; Yang et al., "Focal and Global Knowledge
Distillation for Detectors", CVPR 2022) on camera feature maps.

With the foreground / background weights ``M_fg``, ``M_bg`` of :mod:`.fg_masks` (3D GT
boxes projected into each camera) and the attention maps of a feature map ``F``
``(N, C, H, W)``::

    A_s(F) = H * W * softmax_{HW}(mean_C |F| / T)      (N, H, W)    spatial attention
    A_c(F) = C * softmax_C(mean_{HW} |F| / T)          (N, C)       channel attention

the loss is (``S`` student, ``T`` teacher, sums over every element, ``N`` = images)::

    L_fg  = sum(M_fg * A_s(T) * A_c(T) * (S - T)^2) / N
    L_bg  = sum(M_bg * A_s(T) * A_c(T) * (S - T)^2) / N
    L_at  = (sum |A_c(S) - A_c(T)| + sum |A_s(S) - A_s(T)|) / N
    L_gl  = sum((G_S(S) - G_T(T))^2) / N
    L     = w * (alpha_fgd * L_fg + beta_fgd * L_bg + gamma_fgd * L_at + lambda_fgd * L_gl)

``G_S`` and ``G_T`` are two GcBlock-style global context modules: ``G(F) = F + t(c(F))``
with ``c(F)`` the attention-pooled context vector and ``t`` a bottleneck transform whose last
conv starts at zero. They are trainable and live in this loss module, so they are saved in
the distiller's state dict under the loss's name (``<loss name>.student_context.*``,
``<loss name>.teacher_context.*``). This is the original FGD reduction (sums over ``N``);
the paper's weights (``alpha 1e-3, beta 5e-4, gamma 1e-3, lambda 5e-6``) assume it.

:meth:`FGDLoss.masked` is the same loss with the masks given instead of projected from boxes
(BEV-space distillation passes BEV masks built from the DistillBEV regions).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .feature_utils import (
    check_non_negative,
    check_positive,
    prepare_feature_pair,
)
from .fg_masks import foreground_background_masks
from ...registry import MODELS


class GlobalContextBlock(nn.Module):
    """GCNet-style global context: ``F + transform(attention-pooled context of F)``.

    Args:
        channels: ``C`` of the feature map.
        ratio: bottleneck width of the transform as a fraction of ``channels``.
    """

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, int(channels * ratio))
        self.context_conv = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )
        nn.init.kaiming_normal_(self.context_conv.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.context_conv.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, features: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``: features plus their transformed global context."""
        attention = self.context_conv(features).flatten(2).softmax(dim=-1)
        context = torch.einsum("nck,nk->nc", features.flatten(2), attention[:, 0])
        return features + self.transform(context[..., None, None])


def spatial_channel_attention(features: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """FGD's attention maps of ``(N, C, H, W)`` features.

    Returns:
        ``(N, H, W)`` spatial attention ``H*W * softmax(mean_C|F| / T)`` and ``(N, C)``
        channel attention ``C * softmax(mean_HW|F| / T)``.
    """
    num, channels, height, width = features.shape
    magnitude = features.abs()
    spatial = F.softmax(magnitude.mean(dim=1).flatten(1) / temperature, dim=1)
    channel = F.softmax(magnitude.mean(dim=(2, 3)) / temperature, dim=1)
    return (height * width) * spatial.view(num, height, width), channels * channel


@MODELS.register_module()
class FGDLoss(nn.Module):
    """Focal (foreground/background, attention) and global (relation) feature distillation.

    Args:
        channels: ``C`` of the feature maps (the student's is adapted to the teacher's).
        temperature: ``T`` of the attention softmaxes.
        alpha_fgd: weight of the foreground feature term.
        beta_fgd: weight of the background feature term.
        gamma_fgd: weight of the attention L1 term.
        lambda_fgd: weight of the global relation term.
        context_ratio: bottleneck width of the context modules, a fraction of ``channels``.
        loss_weight: common outer factor of every distillation loss.
    """

    def __init__(
        self,
        channels: int,
        temperature: float = 0.5,
        alpha_fgd: float = 1e-3,
        beta_fgd: float = 5e-4,
        gamma_fgd: float = 1e-3,
        lambda_fgd: float = 5e-6,
        context_ratio: float = 0.5,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if channels < 1:
            raise ValueError(f"{name}: channels must be >= 1, got {channels}")
        self.channels = int(channels)
        self.temperature = check_positive(temperature, "temperature", name)
        self.alpha_fgd = check_non_negative(alpha_fgd, "alpha_fgd", name)
        self.beta_fgd = check_non_negative(beta_fgd, "beta_fgd", name)
        self.gamma_fgd = check_non_negative(gamma_fgd, "gamma_fgd", name)
        self.lambda_fgd = check_non_negative(lambda_fgd, "lambda_fgd", name)
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", name)
        context_ratio = check_positive(context_ratio, "context_ratio", name)
        self.student_context = GlobalContextBlock(channels, context_ratio)
        self.teacher_context = GlobalContextBlock(channels, context_ratio)

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        gt_bboxes_3d: Sequence[Tensor],
        lidar2img: Tensor,
        pad_shape: Sequence[Sequence[int]],
    ) -> Tensor:
        """Weighted FGD loss.

        Args:
            student: ``(B * N, C, H, W)`` student feature map, cameras folded into the batch.
            teacher: ``(B * N, C, H_t, W_t)`` teacher map; detached, resized to ``(H, W)``.
            gt_bboxes_3d: B tensors ``(M_b, 9)``, GT boxes in the LiDAR frame.
            lidar2img: ``(B, N, 4, 4)`` LiDAR -> homogeneous image pixels.
            pad_shape: B pairs ``(H_img, W_img)``, padded image sizes.

        Returns:
            Scalar loss, already multiplied by its term weights and ``loss_weight``.
        """
        student, teacher = self._checked_pair(student, teacher, lidar2img)
        fg_mask, bg_mask = foreground_background_masks(
            gt_bboxes_3d, lidar2img, pad_shape, tuple(student.shape[-2:])
        )
        return self._masked_loss(student, teacher, fg_mask, bg_mask)

    def masked(self, student: Tensor, teacher: Tensor, fg_mask: Tensor, bg_mask: Tensor) -> Tensor:
        """FGD loss with given foreground / background masks.

        Args:
            student: ``(N, C, H, W)``; teacher: ``(N, C, H_t, W_t)`` (detached, resized).
            fg_mask: ``(N, H, W)`` foreground weights; bg_mask: ``(N, H, W)`` background weights.

        Returns:
            Scalar loss, already multiplied by its term weights and ``loss_weight``.
        """
        name = type(self).__name__
        student, teacher = prepare_feature_pair(student, teacher, name)
        if student.shape[1] != self.channels:
            raise ValueError(f"{name}: built with channels={self.channels}, got student {tuple(student.shape)}")
        expected = (student.shape[0], *student.shape[2:])
        if fg_mask.shape != expected or bg_mask.shape != expected:
            raise ValueError(f"{name}: fg_mask and bg_mask must be (N, H, W) = {expected}, got "
                             f"{tuple(fg_mask.shape)} and {tuple(bg_mask.shape)}")
        return self._masked_loss(student, teacher, fg_mask.float(), bg_mask.float())

    def _masked_loss(self, student: Tensor, teacher: Tensor, fg_mask: Tensor, bg_mask: Tensor) -> Tensor:
        """The weighted FGD terms of a prepared pair ``(N, C, H, W)`` and masks ``(N, H, W)``."""
        num = student.shape[0]
        spatial_s, channel_s = spatial_channel_attention(student, self.temperature)
        spatial_t, channel_t = spatial_channel_attention(teacher, self.temperature)
        weighted_error = (student - teacher).pow(2) * spatial_t[:, None] * channel_t[..., None, None]
        fg_loss = (weighted_error * fg_mask[:, None]).sum() / num
        bg_loss = (weighted_error * bg_mask[:, None]).sum() / num
        attention_loss = ((channel_s - channel_t).abs().sum() + (spatial_s - spatial_t).abs().sum()) / num
        relation_loss = self._relation_loss(student, teacher)
        loss = (
            self.alpha_fgd * fg_loss
            + self.beta_fgd * bg_loss
            + self.gamma_fgd * attention_loss
            + self.lambda_fgd * relation_loss
        )
        return self.loss_weight * loss

    def _checked_pair(self, student: Tensor, teacher: Tensor, lidar2img: Tensor) -> tuple[Tensor, Tensor]:
        """Prepare the pair and check channels and the camera count against ``lidar2img``."""
        student, teacher = prepare_feature_pair(student, teacher, type(self).__name__)
        if student.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__}: built with channels={self.channels}, got student "
                f"{tuple(student.shape)} and teacher {tuple(teacher.shape)}"
            )
        if lidar2img.dim() != 4 or lidar2img.shape[0] * lidar2img.shape[1] != student.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: student {tuple(student.shape)} must hold B*N feature maps "
                f"for lidar2img (B, N, 4, 4), got lidar2img {tuple(lidar2img.shape)}"
            )
        return student, teacher

    def _relation_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """``sum((G_S(S) - G_T(T))^2) / N`` of ``(N, C, H, W)`` maps."""
        dtype = self.student_context.context_conv.weight.dtype
        out_s = self.student_context(student.to(dtype)).float()
        out_t = self.teacher_context(teacher.to(dtype)).float()
        return (out_s - out_t).pow(2).sum() / student.shape[0]

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return (
            f"channels={self.channels}, temperature={self.temperature}, alpha_fgd={self.alpha_fgd}, "
            f"beta_fgd={self.beta_fgd}, gamma_fgd={self.gamma_fgd}, lambda_fgd={self.lambda_fgd}, "
            f"loss_weight={self.loss_weight}"
        )
