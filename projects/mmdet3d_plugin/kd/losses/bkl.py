"""Balanced KL divergence (HarmoDistill's "BalanceKL") on feature maps.

As in channel-wise distillation, each channel becomes a distribution over its ``H * W``
positions. The loss moves from the forward KL (mean-seeking: cover all of the teacher's
mass) at the start of training to the reverse KL (mode-seeking: put mass where the teacher
is confident) at the end. ``schedule`` selects how the reverse weight ``r`` enters::

    'released'  L = w * r * [a * KL(p_T ‖ p_S) + (1 - a) * KL(p_S ‖ p_T)] * tau^2 / (N * C)
    'reverse'   L = w * [a * KL(p_T ‖ p_S) + (1 - a) * r * KL(p_S ‖ p_T)] * tau^2 / (N * C)
    'none'      L = w * [KL(p_T ‖ p_S) + r * KL(p_S ‖ p_T)] * tau^2 / (N * C)

    a = 1 - progress
    p_S[n, c] = softmax(S[n, c].flatten() / tau)
    p_T[n, c] = softmax(T[n, c].flatten() / teacher_tau)

``'released'`` (the default) is the released HarmoDistill loss with its ``update_by_iter=True``
schedule, which multiplies **both** terms by ``r``; ``'none'`` is the same loss without the
schedule (``update_by_iter=False``); ``'reverse'`` is this project's earlier reading, with
``r`` on the reverse term only (its forward phase is ``r`` times weaker than the released
recipe). ``progress`` goes from 0 to 1 over training (``iter / max_iters``) and is passed by
the distiller. Unlike the upstream implementation, ``teacher_tau`` really is the teacher's
temperature (upstream silently used ``tau`` for both); it defaults to ``tau``.

:meth:`BalancedKLLoss.weighted` multiplies each position's contribution to both KL terms
(``p_T (log p_T - log p_S)`` and ``p_S (log p_S - log p_T)``) by a per-cell weight of mean 1
per sample (a uniform weight gives the loss above).
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

SCHEDULES = ("released", "reverse", "none")


@MODELS.register_module()
class BalancedKLLoss(nn.Module):
    """Forward-to-reverse scheduled per-channel spatial KL between feature maps.

    Args:
        tau: the student's softmax temperature; the loss is scaled by ``tau^2``.
        teacher_tau: the teacher's softmax temperature; ``None`` uses ``tau``. With
            ``teacher_tau != tau`` the minimum (0) is at ``S / tau == T / teacher_tau``
            (up to a per-channel constant), not at ``S == T``.
        reverse_weight: ``r`` (see ``schedule``).
        loss_weight: ``w``, factor on the loss (0.1 in the released config; 0.01 for the
            last FPN level).
        schedule: ``'released'``, ``'reverse'`` or ``'none'``: how the progress and ``r``
            combine the two KL terms (module docstring).
    """

    def __init__(
        self,
        tau: float = 4.0,
        teacher_tau: Optional[float] = None,
        reverse_weight: float = 7.0,
        loss_weight: float = 0.1,
        schedule: str = "released",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.tau = check_positive(tau, "tau", name)
        self.teacher_tau = (
            self.tau if teacher_tau is None else check_positive(teacher_tau, "teacher_tau", name)
        )
        self.reverse_weight = check_non_negative(reverse_weight, "reverse_weight", name)
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", name)
        if schedule not in SCHEDULES:
            raise ValueError(f"{name}: schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.schedule = schedule

    def forward(self, student: Tensor, teacher: Tensor, progress: float = 0.0) -> Tensor:
        """Weighted balanced KL loss.

        Args:
            student: ``(N, C, H, W)`` student feature map (``N = B * cameras``).
            teacher: ``(N, C, H_t, W_t)`` teacher map; detached, resized to ``(H, W)``.
            progress: training progress in ``[0, 1]``; with a scheduled loss 0 gives the
                forward KL, 1 the reverse KL (ignored by ``schedule='none'``).

        Returns:
            Scalar loss, already multiplied by ``loss_weight``.
        """
        return self.weighted(student, teacher, None, progress)

    def weighted(self, student: Tensor, teacher: Tensor, weight: Optional[Tensor],
                 progress: float = 0.0) -> Tensor:
        """Balanced KL loss with per-cell weights on the KL contributions.

        Args:
            student, teacher, progress: as in :meth:`forward`.
            weight: ``(N, H, W)`` cell weights (normalised to mean 1 per sample inside), or
                None: uniform (:meth:`forward`).

        Returns:
            Scalar loss, already multiplied by ``loss_weight``.
        """
        progress = float(progress)
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"{type(self).__name__}: progress must be in [0, 1], got {progress}")
        student, teacher = prepare_feature_pair(student, teacher, type(self).__name__)
        num, channels = student.shape[:2]
        log_p_s = spatial_log_softmax(student, self.tau)
        log_p_t = spatial_log_softmax(teacher, self.teacher_tau)
        forward_kl, reverse_kl = self._term_weights(progress)
        if weight is None:
            forward_sum, reverse_sum = kl_divergence_sum(log_p_t, log_p_s), kl_divergence_sum(log_p_s, log_p_t)
        else:
            cells = normalise_cell_weights(weight, student, type(self).__name__).flatten(2)
            forward_sum = weighted_kl_divergence_sum(log_p_t, log_p_s, cells)
            reverse_sum = weighted_kl_divergence_sum(log_p_s, log_p_t, cells)
        loss = forward_kl * forward_sum + reverse_kl * reverse_sum
        return self.loss_weight * loss * self.tau**2 / (num * channels)

    def _term_weights(self, progress: float) -> tuple[float, float]:
        """Factors of ``KL(p_T ‖ p_S)`` and ``KL(p_S ‖ p_T)`` at ``progress``."""
        reverse = self.reverse_weight
        if self.schedule == "released":
            return reverse * (1.0 - progress), reverse * progress
        if self.schedule == "reverse":
            return 1.0 - progress, reverse * progress
        return 1.0, reverse

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return (
            f"tau={self.tau}, teacher_tau={self.teacher_tau}, "
            f"reverse_weight={self.reverse_weight}, loss_weight={self.loss_weight}, "
            f"schedule={self.schedule!r}"
        )
