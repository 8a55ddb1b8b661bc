"""Channel-wise distillation (CWD; Shu et al., "Channel-wise Knowledge Distillation for
Dense Prediction", ICCV 2021).

Each channel of a feature map is turned into a distribution over its ``H * W`` positions
with a temperature softmax; the student's distribution is pulled towards the teacher's::

    L = w * tau^2 / (N * C) * sum_{n, c} KL(p_T[n, c] ‖ p_S[n, c]),
    p[n, c] = softmax(F[n, c, :, :].flatten() / tau)

:meth:`ChannelWiseDivergence.weighted` multiplies each position's KL contribution
``p_T (log p_T - log p_S)`` by a per-cell weight of mean 1 per sample (a uniform weight gives
the loss above).
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from .feature_utils import (
    check_non_negative,
    check_positive,
    kl_divergence_sum,
    normalise_cell_weights,
    prepare_feature_pair,
    spatial_log_softmax,
    weighted_kl_divergence_sum,
)
from ...registry import MODELS


@MODELS.register_module()
class ChannelWiseDivergence(nn.Module):
    """Per-channel spatial-softmax KL(teacher ‖ student), times ``tau^2``, over ``N * C``.

    Args:
        tau: softmax temperature, the same for student and teacher (upstream default 4.0).
        loss_weight: factor on the loss (upstream HarmoDistill default 3.0).
    """

    def __init__(self, tau: float = 4.0, loss_weight: float = 3.0) -> None:
        super().__init__()
        self.tau = check_positive(tau, "tau", type(self).__name__)
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", type(self).__name__)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Weighted CWD loss.

        Args:
            student: ``(N, C, H, W)`` student feature map (``N = B * cameras``).
            teacher: ``(N, C, H_t, W_t)`` teacher map; detached, resized to ``(H, W)``.

        Returns:
            Scalar loss, already multiplied by ``loss_weight``; 0 for identical maps.
        """
        return self.weighted(student, teacher, None)

    def weighted(self, student: Tensor, teacher: Tensor, weight: Optional[Tensor]) -> Tensor:
        """CWD loss with per-cell weights on the KL contributions.

        Args:
            student: ``(N, C, H, W)``; teacher: ``(N, C, H_t, W_t)`` (detached, resized).
            weight: ``(N, H, W)`` cell weights (normalised to mean 1 per sample inside), or
                None: uniform (:meth:`forward`).

        Returns:
            Scalar loss, already multiplied by ``loss_weight``.
        """
        student, teacher = prepare_feature_pair(student, teacher, type(self).__name__)
        num, channels = student.shape[:2]
        log_p_s = spatial_log_softmax(student, self.tau)
        log_p_t = spatial_log_softmax(teacher, self.tau)
        if weight is None:
            kl = kl_divergence_sum(log_p_t, log_p_s)
        else:
            cells = normalise_cell_weights(weight, student, type(self).__name__).flatten(2)
            kl = weighted_kl_divergence_sum(log_p_t, log_p_s, cells)
        return self.loss_weight * kl * self.tau**2 / (num * channels)

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return f"tau={self.tau}, loss_weight={self.loss_weight}"
