"""Shared helpers of the feature-map distillation losses.

Every feature-map loss receives a student map and a teacher map recorded by the distiller's
taps, ``(B * N, C, H, W)`` with the cameras folded into the batch. Before comparing them a
loss

* checks that both are 4-D with the same batch and channel counts (a channel mismatch is a
  configuration error: the distiller puts an adapter in front of the student),
* detaches the teacher (gradients flow to the student only),
* resizes the teacher bilinearly to the student's ``(H, W)`` when they differ, and
* computes in float32 (stable softmax and sums under fp16/bf16 autocast).

:func:`spatial_log_softmax` and :func:`kl_divergence_sum` are the per-channel spatial
distributions shared by the KL-style losses (CWD, BKL).

**Per-cell weights** (the weighted entry points of the families, used by BEV-space
distillation): a weight map ``w`` ``(N, H, W)`` is first normalised to mean 1 per sample
(:func:`normalise_cell_weights`), so a uniform map leaves a loss unchanged and only the
relative weighting of cells matters. The MSE multiplies each squared error by its cell's
weight; the KL losses multiply each per-position KL contribution
(:func:`weighted_kl_divergence_sum`)::

    sum_{n, c, k} w[n, k] * p[n, c, k] * (log p[n, c, k] - log q[n, c, k])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def check_feature_maps(student: Tensor, teacher: Tensor, loss_name: str) -> None:
    """Raise a clear error unless ``student`` and ``teacher`` are comparable feature maps.

    Args:
        student: ``(B * N, C, H_s, W_s)``.
        teacher: ``(B * N, C, H_t, W_t)``; only ``H``/``W`` may differ from the student.
        loss_name: the loss's class name, used in the message.

    Raises:
        ValueError: a tensor is not 4-D, or batch or channel counts differ.
    """
    if student.dim() != 4 or teacher.dim() != 4:
        raise ValueError(
            f"{loss_name}: expects feature maps (B*N, C, H, W), got student "
            f"{tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f"{loss_name}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} "
            f"have different channel counts ({student.shape[1]} vs {teacher.shape[1]}); "
            f"put an adapter in front of the student in the distiller config"
        )
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"{loss_name}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} "
            f"have different batch sizes ({student.shape[0]} vs {teacher.shape[0]})"
        )


def resize_to(features: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(N, C, H, W)`` maps to ``(N, C, *size)`` (no-op if equal).

    ``align_corners=False``: feature cells are treated as pixel areas, as in the FPN.
    """
    if tuple(features.shape[-2:]) == tuple(size):
        return features
    return F.interpolate(features, size=tuple(size), mode="bilinear", align_corners=False)


def prepare_feature_pair(student: Tensor, teacher: Tensor, loss_name: str) -> tuple[Tensor, Tensor]:
    """Check, detach, resize and upcast a student/teacher feature-map pair.

    Args:
        student: ``(B * N, C, H_s, W_s)``.
        teacher: ``(B * N, C, H_t, W_t)``.
        loss_name: the loss's class name, used in error messages.

    Returns:
        ``(student, teacher)``, both float32 ``(B * N, C, H_s, W_s)``; the teacher is
        detached and bilinearly resized to the student's spatial size.
    """
    check_feature_maps(student, teacher, loss_name)
    teacher = resize_to(teacher.detach().float(), tuple(student.shape[-2:]))
    return student.float(), teacher


def spatial_log_softmax(features: Tensor, tau: float) -> Tensor:
    """Per-channel log-softmax over the spatial positions.

    Args:
        features: ``(N, C, H, W)``.
        tau: temperature (> 0); the logits are ``features / tau``.

    Returns:
        ``(N, C, H * W)`` log-probabilities; each ``(n, c)`` row sums to 1 after ``exp``.
    """
    return F.log_softmax(features.flatten(2) / tau, dim=-1)


def kl_divergence_sum(log_p: Tensor, log_q: Tensor) -> Tensor:
    """``sum p * (log p - log q)``: KL(p ‖ q) summed over every row and position.

    Args:
        log_p: ``(N, C, K)`` log-probabilities of the reference distribution ``p``.
        log_q: ``(N, C, K)`` log-probabilities of ``q``.

    Returns:
        Scalar, ``sum_{n, c} KL(p_nc ‖ q_nc)``.
    """
    return F.kl_div(log_q, log_p, reduction="sum", log_target=True)


def normalise_cell_weights(weight: Tensor, features: Tensor, loss_name: str) -> Tensor:
    """Per-cell weights divided by their per-sample mean.

    Args:
        weight: ``(N, H, W)`` non-negative weights of the cells of ``features``.
        features: ``(N, C, H, W)`` the (student) feature map they weigh.
        loss_name: the loss's class name, used in the message.

    Returns:
        ``(N, 1, H, W)`` float32 weights of mean 1 per sample (0 where a sample's weights are all 0).
    """
    if weight.shape != (features.shape[0], *features.shape[2:]):
        raise ValueError(f"{loss_name}: weight must be (N, H, W) = {(features.shape[0], *features.shape[2:])} "
                         f"for feature maps {tuple(features.shape)}, got {tuple(weight.shape)}")
    weight = weight.detach().float()
    mean = weight.flatten(1).mean(dim=1).clamp(min=1e-12)
    return (weight / mean[:, None, None]).unsqueeze(1)


def weighted_kl_divergence_sum(log_p: Tensor, log_q: Tensor, weight: Tensor) -> Tensor:
    """``sum w * p * (log p - log q)``: KL(p ‖ q) contributions weighted per position.

    Args:
        log_p: ``(N, C, K)`` log-probabilities of the reference distribution ``p``.
        log_q: ``(N, C, K)`` log-probabilities of ``q``.
        weight: ``(N, 1, K)`` weight of each position (shared by the channels).

    Returns:
        Scalar; equals :func:`kl_divergence_sum` for ``weight == 1``.
    """
    return (F.kl_div(log_q, log_p, reduction="none", log_target=True) * weight).sum()


def check_positive(value: float, name: str, loss_name: str) -> float:
    """Return ``float(value)``; raise ``ValueError`` naming ``name`` unless it is > 0."""
    if not value > 0:
        raise ValueError(f"{loss_name}: {name} must be > 0, got {value!r}")
    return float(value)


def check_non_negative(value: float, name: str, loss_name: str) -> float:
    """Return ``float(value)``; raise ``ValueError`` naming ``name`` unless it is >= 0."""
    if not value >= 0:
        raise ValueError(f"{loss_name}: {name} must be >= 0, got {value!r}")
    return float(value)
