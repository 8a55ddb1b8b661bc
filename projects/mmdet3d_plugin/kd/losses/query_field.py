"""The 3D-query receptive field: where the decoder queries sample, rendered in BEV.

Every query of a decoder layer reads the image at some 3D locations. Those locations,
each carrying a value, are splatted into a BEV grid (``bev_size = (H, W)`` cells over the
``x`` / ``y`` extent of ``pc_range``; row along ``y``, column along ``x``) for the teacher
and for the student (bilinear, summed, differentiable: :func:`~.bev_splat.splat_bev`), the
maps are blurred at several scales and aligned at every scale.

**Sampled locations.**

* RayDN (sparse, :class:`QueryFieldLoss`): the DFA key points, ``reference point +
  learned offset`` in metres, ``(B, Q, 13, 3)``, tapped at
  ``...attentions.1.key_points`` (a method tap); values are the DFA's aggregation weights
  (``...attentions.1.aggregation_weights``, ``value_type='dfa_weights'``: summed over
  cameras and levels, averaged over groups, so a query's values sum to 1), any per-query value, or the query features
  (``value_type='features'``: each query's ``C``-dim feature, split equally over its ``P``
  locations, gives a ``(B, C, H, W)`` map: upstream HarmoDistill's reading).
* StreamPETR (dense): :mod:`.dense_query_field` moves the reference points onto the rays of
  the most-attended image tokens, weighted by attention.

**Scales** (``blur_sigmas``, metres): a splat reaches one cell, so a single-scale map pair
says nothing about where a location 3 cells away should move. Each map is therefore also
blurred by a mass-preserving Gaussian (:func:`~.bev_splat.blur_bev`, mirror borders;
sigma 0 = the raw splat; default :data:`DEFAULT_BLUR_SIGMAS`) and
``L = loss_weight * mean over scales of L_scale``.

**Alignment** (``loss_type``) at one scale: ``'density'``: each map as a mass distribution
over the cells, ``p = map / sum(map)`` (non-negative values, e.g. ``'dfa_weights'``; scale-free,
unlike ``'kl'``, which flattens maps of small per-cell values to a nearly uniform softmax);
``'kl'``: ``p = softmax(map / T)`` (maps on a logit scale); both then use the generalised KL
``sum_c w_c [p_T log(p_T / p_S) - p_T + p_S]`` (times ``T^2`` for ``'kl'``; ``KL(p_T || p_S)``
for uniform ``w``; every term >= 0); ``'mse'``: ``mean_c w_c (S_c - T_c)^2``. The cell weights
``w`` (mean 1 per sample, the same at every scale) come from the DistillBEV region
decomposition (:class:`~.region_weights.RegionWeights`) when ``region_weights`` is set, else 1.
``'bkl'`` (with, and only with, ``value_type='features'``): :class:`~.bkl.BalancedKLLoss` on
the ``(B, C, H, W)`` maps (per-channel spatial softmax KL, forward to reverse over
``progress``; no cell weights). Teacher tensors are detached; the batch is averaged.
"""
from __future__ import annotations

import copy
import difflib
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS
from .bev_splat import blur_bev, blur_matrices, check_blur_sigmas, splat_bev, splat_bev_features
from .bkl import BalancedKLLoss
from .query_matching import take_last_queries
from .region_weights import RegionWeights

VALUE_TYPES = ("raw", "feature_rms", "max_sigmoid", "dfa_weights", "features")
LOSS_TYPES = ("density", "kl", "mse", "bkl")
# Blur scales in metres (see docs/kd_losses_queries.md for the convergence they buy).
DEFAULT_BLUR_SIGMAS = (0.8, 1.6, 3.2, 6.4)
# BalancedKLLoss arguments settable through ``bkl=dict(...)`` (its loss_weight stays 1).
BKL_ARGS = ("tau", "teacher_tau", "reverse_weight", "schedule")
# Mass added to every cell of a ``'density'`` map (relative to its mean) so that empty cells
# keep a finite log-probability.
DENSITY_FLOOR = 1e-6


def query_values(values: Tensor, value_type: str, num_points: int) -> Tensor:
    """Per-location values ``(B, Q, P)`` (``(B, Q, P, C)`` for ``'features'``) from a tapped tensor.

    Args:
        values: ``'raw'``: ``(B, Q, P)`` or ``(B, Q)``; ``'feature_rms'``: query features
            ``(B, Q, C)`` (their root mean square); ``'max_sigmoid'``: class logits
            ``(B, Q, C)`` (max sigmoid score); ``'dfa_weights'``: DFA weights
            ``(B, N, L, G, Q, P)`` (summed over cameras and levels, averaged over groups);
            ``'features'``: query features ``(B, Q, C)`` (the whole vector).
        value_type: one of :data:`VALUE_TYPES`.
        num_points: ``P``; a per-query value is shared equally by its ``P`` locations.
    """
    if value_type not in VALUE_TYPES:
        raise ValueError(f"query_values: value_type must be one of {VALUE_TYPES}, got {value_type!r}")
    if value_type == "dfa_weights":
        if values.dim() != 6:
            raise ValueError("value_type='dfa_weights' expects (B, N, L, G, Q, P), got "
                             f"{tuple(values.shape)}")
        return values.sum(dim=(1, 2)).mean(dim=1)
    if value_type in ("feature_rms", "max_sigmoid", "features"):
        if values.dim() != 3:
            raise ValueError(f"value_type={value_type!r} expects (B, Q, C), got {tuple(values.shape)}")
        if value_type == "features":
            return (values / num_points).unsqueeze(2).expand(-1, -1, num_points, -1)
        per_query = values.pow(2).mean(-1).sqrt() if value_type == "feature_rms" else \
            values.sigmoid().amax(-1)
        return (per_query / num_points).unsqueeze(-1).expand(-1, -1, num_points)
    if values.dim() == 2:
        return (values / num_points).unsqueeze(-1).expand(-1, -1, num_points)
    if values.dim() != 3:
        raise ValueError(f"value_type='raw' expects (B, Q) or (B, Q, P), got {tuple(values.shape)}")
    return values


def field_divergence(student: Tensor, teacher: Tensor, weights: Optional[Tensor], loss_type: str,
                     temperature: float) -> Tensor:
    """Weighted divergence (``loss_type``, see the module docstring) between BEV maps ``(B, H, W)``.

    Returns the mean over the batch. Raises ``ValueError`` for a negative ``'density'`` map.
    """
    student, teacher = student.flatten(1), teacher.flatten(1)
    if weights is None:
        weights = torch.ones_like(teacher)
    weights = weights.flatten(1).to(student)
    weights = weights / weights.mean(dim=1, keepdim=True).clamp(min=1e-12)
    if loss_type == "mse":
        return (weights * (student - teacher).pow(2)).mean()
    if loss_type == "density":
        log_p_s, log_p_t, scale = _log_density(student), _log_density(teacher), 1.0
    else:
        log_p_s = F.log_softmax(student / temperature, dim=1)
        log_p_t = F.log_softmax(teacher / temperature, dim=1)
        scale = temperature ** 2
    p_t = log_p_t.exp()
    terms = p_t * (log_p_t - log_p_s) - p_t + log_p_s.exp()
    return (weights * terms).sum(dim=1).mean() * scale


def _log_density(bev: Tensor) -> Tensor:
    """``log(m / sum(m))`` of non-negative flattened maps ``(B, H*W)`` (plus a small floor)."""
    if bool((bev < 0).any()):
        raise ValueError("loss_type='density' needs non-negative maps (e.g. value_type='dfa_weights'); "
                         f"got a minimum of {float(bev.min()):.3g}")
    floor = DENSITY_FLOOR * bev.detach().mean(dim=1, keepdim=True).clamp(min=1e-12)
    mass = bev + floor
    return mass.log() - mass.sum(dim=1, keepdim=True).log()


class BEVFieldLoss(nn.Module):
    """Shared rendering and alignment of :class:`QueryFieldLoss` and
    :class:`~.dense_query_field.DenseQueryFieldLoss`."""

    loss_types: tuple[str, ...] = ("density", "kl", "mse")

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int], loss_type: str,
                 temperature: float, blur_sigmas: Sequence[float], num_queries: Optional[int],
                 region_weights: Optional[dict], loss_weight: float) -> None:
        super().__init__()
        name = type(self).__name__
        if loss_type not in self.loss_types or temperature <= 0 or (loss_type != "kl" and temperature != 1.0):
            raise ValueError(f"{name}: loss_type must be one of {self.loss_types} and temperature > 0 "
                             f"(a temperature other than 1.0 only with 'kl'); got {loss_type!r}, {temperature}")
        if len(pc_range) != 6 or len(bev_size) != 2 or min(bev_size) < 2:
            raise ValueError(f"{name}: pc_range needs 6 values and bev_size (H, W) >= 2 cells; got "
                             f"{pc_range}, {bev_size}")
        self.pc_range = [float(v) for v in pc_range]
        self.bev_size = (int(bev_size[0]), int(bev_size[1]))
        self.loss_type = loss_type
        self.temperature = float(temperature)
        self.blur_sigmas = check_blur_sigmas(blur_sigmas, DEFAULT_BLUR_SIGMAS, name)
        rows, cols = blur_matrices([s for s in self.blur_sigmas if s > 0], self.pc_range, self.bev_size)
        # Constant (S, H, H) / (S, W, W) blurs of the sigmas > 0: non-persistent, never in a checkpoint.
        self.register_buffer("blur_rows", rows, persistent=False)
        self.register_buffer("blur_cols", cols, persistent=False)
        self.num_queries = num_queries
        self.loss_weight = float(loss_weight)
        self.region_weights = None
        if region_weights is not None:
            self.region_weights = RegionWeights(pc_range=self.pc_range, bev_size=self.bev_size,
                                                **copy.deepcopy(region_weights))

    def render(self, points: Tensor, values: Tensor) -> Tensor:
        """BEV map of ``points (B, Q, P, 3)``: ``(B, H, W)`` for ``values (B, Q, P)``,
        ``(B, C, H, W)`` for ``values (B, Q, P, C)``."""
        if points.dim() != 4 or values.dim() not in (3, 4) or values.shape[:3] != points.shape[:3]:
            raise ValueError(f"{type(self).__name__}: points (B, Q, P, 3) and values (B, Q, P) or "
                             f"(B, Q, P, C) needed, got {tuple(points.shape)} and {tuple(values.shape)}")
        if values.dim() == 4:
            return splat_bev_features(points.flatten(1, 2), values.flatten(1, 2), self.pc_range, self.bev_size)
        return splat_bev(points.flatten(1, 2), values.flatten(1), self.pc_range, self.bev_size)

    def align(self, student_map: Tensor, teacher_map: Tensor, gt_bboxes_3d: Optional[Sequence[Tensor]],
              teacher_cls: Optional[Tensor], teacher_box: Optional[Tensor], progress: float = 0.0) -> Tensor:
        """Loss between the maps ``(B, [C,] H, W)`` averaged over the blur scales (teacher detached)."""
        if student_map.shape != teacher_map.shape:
            raise ValueError(f"{type(self).__name__}: student and teacher maps differ in shape "
                             f"({tuple(student_map.shape)} vs {tuple(teacher_map.shape)}): batch sizes differ")
        weights = None
        if self.region_weights is not None:
            if gt_bboxes_3d is None or teacher_cls is None or teacher_box is None:
                raise ValueError(f"{type(self).__name__} with region_weights needs gt_bboxes_3d, "
                                 "teacher_cls and teacher_box")
            weights = self.region_weights(
                gt_bboxes_3d, take_last_queries(teacher_cls.detach(), self.num_queries, "teacher_cls"),
                take_last_queries(teacher_box.detach(), self.num_queries, "teacher_box"))
        teacher_map = teacher_map.detach()
        losses = [self.divergence(blur_bev(student_map, rows, cols), blur_bev(teacher_map, rows, cols),
                                  weights, progress) for rows, cols in zip(self.blur_rows, self.blur_cols)]
        if 0.0 in self.blur_sigmas:
            losses.append(self.divergence(student_map, teacher_map, weights, progress))
        return self.loss_weight * torch.stack(losses).mean()

    def divergence(self, student_map: Tensor, teacher_map: Tensor, weights: Optional[Tensor],
                   progress: float) -> Tensor:
        """Loss at one scale, before ``loss_weight`` (``progress`` is unused here)."""
        return field_divergence(student_map, teacher_map, weights, self.loss_type, self.temperature)


@MODELS.register_module()
class QueryFieldLoss(BEVFieldLoss):
    """BEV receptive-field loss from sampled locations (sparse heads: RayDN's DFA key points).

    Args:
        pc_range: ``(6,)`` point-cloud range; the grid covers its ``x`` / ``y`` extent.
        bev_size: ``(H, W)`` BEV cells.
        loss_type: ``'density'`` (maps as mass distributions), ``'kl'`` (spatial softmax),
            ``'mse'``, or ``'bkl'`` (balanced KL; only with ``value_type='features'``, which
            needs it).
        temperature: softmax temperature of ``'kl'`` (must stay 1.0 for the others; ``'bkl'``
            takes its temperature from ``bkl=dict(tau=...)``).
        value_type: how ``*_values`` are read, one of :data:`VALUE_TYPES` (see
            :func:`query_values`).
        num_queries: keep the last ``num_queries`` queries of every query tensor (drops the
            DN queries the student puts in front while training); None keeps all.
        region_weights: ``RegionWeights`` arguments (without ``type``, ``pc_range``,
            ``bev_size``) to weight cells by the DistillBEV decomposition; None: uniform.
            Not with ``'bkl'``.
        loss_weight: factor on the loss.
        blur_sigmas: Gaussian blur scales in metres (0: the raw splat); the loss is the
            mean of the alignment over these scales.
        bkl: ``BalancedKLLoss`` arguments (of :data:`BKL_ARGS`) for ``loss_type='bkl'``; None
            keeps its defaults (the released ``tau=4``, ``reverse_weight=7``, ``'released'``).
    """

    loss_types = LOSS_TYPES

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int] = (128, 128),
                 loss_type: str = "density", temperature: float = 1.0, value_type: str = "raw",
                 num_queries: Optional[int] = None, region_weights: Optional[dict] = None,
                 loss_weight: float = 1.0, blur_sigmas: Sequence[float] = DEFAULT_BLUR_SIGMAS,
                 bkl: Optional[dict] = None) -> None:
        super().__init__(pc_range, bev_size, loss_type, temperature, blur_sigmas, num_queries,
                         region_weights, loss_weight)
        if value_type not in VALUE_TYPES:
            raise ValueError(f"QueryFieldLoss: value_type must be one of {VALUE_TYPES}, got {value_type!r}")
        if (value_type == "features") != (loss_type == "bkl"):
            raise ValueError("QueryFieldLoss: value_type='features' ((B, C, H, W) signed feature maps) "
                             "is aligned by loss_type='bkl' and 'bkl' needs value_type='features'; got "
                             f"value_type={value_type!r}, loss_type={loss_type!r}")
        if loss_type == "bkl" and region_weights is not None:
            raise ValueError("QueryFieldLoss: region_weights is not supported with loss_type='bkl' "
                             "(BalancedKLLoss has no per-cell weights); set region_weights=None")
        if bkl is not None and loss_type != "bkl":
            raise ValueError("QueryFieldLoss: bkl=... is only used by loss_type='bkl', got "
                             f"loss_type={loss_type!r}")
        self.value_type = value_type
        self.bkl = _build_bkl(bkl) if loss_type == "bkl" else None

    def divergence(self, student_map: Tensor, teacher_map: Tensor, weights: Optional[Tensor],
                   progress: float) -> Tensor:
        """Loss at one scale: :class:`~.bkl.BalancedKLLoss` for ``'bkl'``, else the field divergence."""
        if self.bkl is not None:
            return self.bkl(student_map, teacher_map, progress)
        return super().divergence(student_map, teacher_map, weights, progress)

    def _field(self, points: Tensor, values: Tensor, side: str) -> Tensor:
        """BEV map of one side from ``points (B, Q, P, 3)`` or ``(B, Q, 3)`` and its values."""
        if points.dim() == 3:
            points = points.unsqueeze(2)
        if points.dim() != 4 or points.shape[-1] != 3:
            raise ValueError(f"{side}_points must be (B, Q, P, 3) or (B, Q, 3), got {tuple(points.shape)}")
        values = query_values(values, self.value_type, points.shape[2])
        if values.shape[:3] != points.shape[:3]:
            raise ValueError(f"{side}_values give {tuple(values.shape[:3])} per location, {side}_points "
                             f"{tuple(points.shape)} need (B, Q, P) = {tuple(points.shape[:3])}")
        points = take_last_queries(points, self.num_queries, f"{side}_points")
        values = take_last_queries(values, self.num_queries, f"{side}_values")
        return self.render(points, values)

    def forward(self, student_points: Tensor, student_values: Tensor, teacher_points: Tensor,
                teacher_values: Tensor, gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
                teacher_cls: Optional[Tensor] = None, teacher_box: Optional[Tensor] = None,
                progress: float = 0.0) -> Tensor:
        """Loss between the student's and the teacher's BEV query fields.

        Args:
            student_points / teacher_points: ``(B, Q, P, 3)`` (or ``(B, Q, 3)``) metric
                LiDAR-frame locations; Q and P may differ between the two.
            student_values / teacher_values: per ``value_type`` (see :func:`query_values`);
                for ``'features'`` ``(B, Q, C)`` with the same ``C`` on both sides.
            gt_bboxes_3d: B tensors ``(M_b, 9)``; teacher_cls ``(B, Q_t, C)`` logits and
                teacher_box ``(B, Q_t, 10)`` codes: needed with ``region_weights`` only.
            progress: training progress in ``[0, 1]`` (passed by the distiller); used by
                ``loss_type='bkl'`` only.

        Returns:
            Weighted scalar loss.
        """
        if self.value_type == "features" and student_values.shape[-1:] != teacher_values.shape[-1:]:
            raise ValueError("QueryFieldLoss: value_type='features' needs the same channel count C in "
                             f"student_values {tuple(student_values.shape)} and teacher_values "
                             f"{tuple(teacher_values.shape)}; put a LinearAdapter on the student's values "
                             "(adapter=dict(student_values=...)) in the distiller config")
        student_map = self._field(student_points, student_values, "student")
        with torch.no_grad():
            teacher_map = self._field(teacher_points.detach(), teacher_values.detach(), "teacher")
        return self.align(student_map, teacher_map, gt_bboxes_3d, teacher_cls, teacher_box, progress)


def _build_bkl(bkl: Optional[dict]) -> BalancedKLLoss:
    """The :class:`~.bkl.BalancedKLLoss` of ``loss_type='bkl'`` (``loss_weight`` 1)."""
    args = copy.deepcopy(bkl) if bkl is not None else {}
    unknown = sorted(set(args) - set(BKL_ARGS))
    if unknown:
        closest = {key: difflib.get_close_matches(key, BKL_ARGS, n=1) for key in unknown}
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key) for key, close in closest.items()]
        raise ValueError(f"QueryFieldLoss: bkl takes {BKL_ARGS} (the loss_weight is QueryFieldLoss's own), "
                         f"got unknown {', '.join(hints)}")
    return BalancedKLLoss(loss_weight=1.0, **args)
