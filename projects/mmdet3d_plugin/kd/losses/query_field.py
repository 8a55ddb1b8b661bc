"""The 3D-query receptive field: where the decoder queries sample, rendered in BEV.

Every query of a decoder layer reads the image at some 3D locations. Those locations,
each carrying a value, are splatted into a BEV grid (``bev_size = (H, W)`` cells over the
``x`` / ``y`` extent of ``pc_range``; row along ``y``, column along ``x``) for the teacher
and for the student, and the two maps are aligned.

**Splatting** (:func:`splat_bev`) is bilinear and differentiable: a location at continuous
cell coordinate ``g = (x - x_min) / cell - 0.5`` (cell centres at integers) spreads its
value over the 4 neighbouring cell centres with the bilinear weights, **summed** (no
last-write-wins). Locations inside the ``x`` / ``y`` range keep all their mass (in the
outer half cell the coordinate is clamped onto the border cells); locations outside are
dropped.

**Sampled locations.**

* RayDN (sparse, :class:`QueryFieldLoss`): the DFA key points, ``reference point +
  learned offset`` in metres, ``(B, Q, 13, 3)``, tapped at
  ``...attentions.1.key_points_probe``; values are the DFA's aggregation weights
  (``value_type='dfa_weights'``: summed over cameras and levels, averaged over groups, so a
  query's values sum to 1) or any per-query value.
* StreamPETR (dense, :class:`DenseQueryFieldLoss`): the decoder cross-attends all image
  tokens; token ``k`` is a camera ray (its frustum points from the first to the last depth
  bin). Query ``q`` with reference point ``r_q`` is defined to sample each of its
  ``num_points`` most-attended tokens at the point of that ray closest to ``r_q``,
  ``a_k + t (b_k - a_k)``, ``t = clamp((r_q - a_k)·(b_k - a_k) / |b_k - a_k|^2, 0, 1)``,
  with value = its attention weight ``A[q, k]``. The locations are thus the reference points
  moved onto the rays the query reads, weighted by the query's attention.

**Alignment** (``loss_type``): ``'density'``: each map is read as a mass distribution over the
cells, ``p = map / sum(map)`` (values must be non-negative, e.g. ``'dfa_weights'``), so the
loss does not depend on the maps' scale: a few hundred unit-mass queries spread over 128 x 128
cells give per-cell values far below 1, which ``'kl'`` would flatten to a nearly uniform
softmax and a loss near zero; ``'kl'``: ``p = softmax(map / T)`` over the cells (for maps with
values on a logit scale); both then use the generalised KL
``sum_c w_c [p_T log(p_T / p_S) - p_T + p_S]`` (times ``T^2`` for ``'kl'``; equal to
``KL(p_T || p_S)`` for uniform ``w``; every term is >= 0); ``'mse'``: ``mean_c w_c (S_c - T_c)^2``. The cell
weights ``w`` (normalised to mean 1 per sample) come from the DistillBEV region
decomposition (:class:`~.region_weights.RegionWeights`) when ``region_weights`` is set,
else 1. Teacher tensors are detached; the result is averaged over the batch.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS
from .query_matching import take_last_queries
from .region_weights import RegionWeights

VALUE_TYPES = ("raw", "feature_rms", "max_sigmoid", "dfa_weights")
LOSS_TYPES = ("density", "kl", "mse")
# Mass added to every cell of a ``'density'`` map (relative to its mean) so that empty cells
# keep a finite log-probability.
DENSITY_FLOOR = 1e-6


def splat_bev(points: Tensor, values: Tensor, pc_range: Sequence[float], bev_size: Sequence[int]) -> Tensor:
    """Bilinear, summing splat of valued locations into a BEV grid.

    Args:
        points: ``(B, M, >=2)`` metric locations (only ``x``, ``y`` used).
        values: ``(B, M)`` value of every location.
        pc_range: ``(6,)``; the grid covers ``[x_min, x_max] x [y_min, y_max]``.
        bev_size: ``(H, W)``.

    Returns:
        ``(B, H, W)``; its sum equals the sum of the values of the in-range locations.
    """
    height, width = int(bev_size[0]), int(bev_size[1])
    if points.dim() != 3 or points.shape[-1] < 2 or values.shape != points.shape[:2] or \
            min(height, width) < 2:
        raise ValueError(f"splat_bev expects points (B, M, 2 or 3), values (B, M) and a grid of at "
                         f"least 2 x 2 cells, got {tuple(points.shape)}, {tuple(values.shape)}, {bev_size}")
    low = points.new_tensor([pc_range[0], pc_range[1]])
    span = points.new_tensor([pc_range[3] - pc_range[0], pc_range[4] - pc_range[1]])
    size = points.new_tensor([float(width), float(height)])
    unit = (points[..., :2] - low) / span
    inside = ((unit >= 0) & (unit <= 1)).all(dim=-1) & torch.isfinite(unit).all(dim=-1)
    limit = size - 1
    grid = torch.minimum(torch.maximum(unit * size - 0.5, torch.zeros_like(size)), limit)
    grid = torch.where(inside.unsqueeze(-1), grid, torch.zeros_like(grid))
    base = grid.detach().floor().clamp(max=limit - 1).clamp(min=0)
    frac = grid - base
    values = torch.where(inside, values, torch.zeros_like(values))
    cells, weights = [], []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        wx = frac[..., 0] if dx else 1 - frac[..., 0]
        wy = frac[..., 1] if dy else 1 - frac[..., 1]
        cells.append(((base[..., 1] + dy) * width + base[..., 0] + dx).long())
        weights.append(values * wx * wy)
    bev = values.new_zeros(points.shape[0], height * width)
    bev = bev.scatter_add(1, torch.cat(cells, dim=1), torch.cat(weights, dim=1))
    return bev.view(-1, height, width)


def query_values(values: Tensor, value_type: str, num_points: int) -> Tensor:
    """Per-location values ``(B, Q, P)`` from a tapped tensor.

    Args:
        values: ``'raw'``: ``(B, Q, P)`` or ``(B, Q)``; ``'feature_rms'``: query features
            ``(B, Q, C)`` (their root mean square); ``'max_sigmoid'``: class logits
            ``(B, Q, C)`` (max sigmoid score); ``'dfa_weights'``: DFA weights
            ``(B, N, L, G, Q, P)`` (summed over cameras and levels, averaged over groups).
        value_type: one of :data:`VALUE_TYPES`.
        num_points: ``P``; a per-query value is shared equally by its ``P`` locations.
    """
    if value_type == "dfa_weights":
        if values.dim() != 6:
            raise ValueError("value_type='dfa_weights' expects (B, N, L, G, Q, P), got "
                             f"{tuple(values.shape)}")
        return values.sum(dim=(1, 2)).mean(dim=1)
    if value_type in ("feature_rms", "max_sigmoid"):
        if values.dim() != 3:
            raise ValueError(f"value_type={value_type!r} expects (B, Q, C), got {tuple(values.shape)}")
        per_query = values.pow(2).mean(-1).sqrt() if value_type == "feature_rms" else \
            values.sigmoid().amax(-1)
        return (per_query / num_points).unsqueeze(-1).expand(-1, -1, num_points)
    if values.dim() == 2:
        return (values / num_points).unsqueeze(-1).expand(-1, -1, num_points)
    if values.dim() != 3:
        raise ValueError(f"value_type='raw' expects (B, Q) or (B, Q, P), got {tuple(values.shape)}")
    return values


def dense_query_samples(attn: Tensor, reference_points: Tensor, token_points: Tensor,
                        num_points: int) -> tuple[Tensor, Tensor]:
    """Sampled locations of dense-attention queries (StreamPETR; see the module docstring).

    Args:
        attn: ``(B, Q, K)`` cross-attention map over image tokens.
        reference_points: ``(B, Q, 3)`` metric reference points.
        token_points: ``(B, K, D, 3)`` metric frustum points of every token's ray.
        num_points: most-attended tokens kept per query (``P``, at most ``K``).

    Returns:
        ``points (B, Q, P, 3)`` and ``values (B, Q, P)`` (the attention weights).
    """
    batch, num_query, num_tokens = attn.shape
    if reference_points.shape != (batch, num_query, 3) or token_points.dim() != 4 or \
            token_points.shape[:2] != (batch, num_tokens) or token_points.shape[-1] != 3:
        raise ValueError(f"dense_query_samples: attn {tuple(attn.shape)}, reference_points "
                         f"{tuple(reference_points.shape)} and token_points {tuple(token_points.shape)} "
                         "must be (B, Q, K), (B, Q, 3) and (B, K, D, 3)")
    values, index = attn.topk(min(num_points, num_tokens), dim=-1)
    flat = index.reshape(batch, -1, 1).expand(-1, -1, 3)
    start = torch.gather(token_points[:, :, 0], 1, flat).view(*index.shape, 3)
    ray = torch.gather(token_points[:, :, -1] - token_points[:, :, 0], 1, flat).view(*index.shape, 3)
    along = ((reference_points.unsqueeze(2) - start) * ray).sum(-1)
    t = (along / ray.pow(2).sum(-1).clamp(min=1e-12)).clamp(0.0, 1.0)
    return start + t.unsqueeze(-1) * ray, values


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


class _BEVFieldLoss(nn.Module):
    """Shared rendering and alignment of :class:`QueryFieldLoss` / :class:`DenseQueryFieldLoss`."""

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int], loss_type: str,
                 temperature: float, num_queries: Optional[int], region_weights: Optional[dict],
                 loss_weight: float) -> None:
        super().__init__()
        name = type(self).__name__
        if loss_type not in LOSS_TYPES or temperature <= 0 or (loss_type != "kl" and temperature != 1.0):
            raise ValueError(f"{name}: loss_type must be one of {LOSS_TYPES} and temperature > 0 "
                             f"(a temperature other than 1.0 only with 'kl'); got {loss_type!r}, {temperature}")
        if len(pc_range) != 6 or len(bev_size) != 2 or min(bev_size) < 2:
            raise ValueError(f"{name}: pc_range needs 6 values and bev_size (H, W) >= 2 cells; got "
                             f"{pc_range}, {bev_size}")
        self.pc_range = [float(v) for v in pc_range]
        self.bev_size = (int(bev_size[0]), int(bev_size[1]))
        self.loss_type = loss_type
        self.temperature = float(temperature)
        self.num_queries = num_queries
        self.loss_weight = float(loss_weight)
        self.region_weights = None
        if region_weights is not None:
            self.region_weights = RegionWeights(pc_range=self.pc_range, bev_size=self.bev_size,
                                                **copy.deepcopy(region_weights))

    def render(self, points: Tensor, values: Tensor) -> Tensor:
        """BEV map ``(B, H, W)`` of ``points (B, Q, P, 3)`` with ``values (B, Q, P)``."""
        if points.dim() != 4 or values.shape != points.shape[:3]:
            raise ValueError(f"{type(self).__name__}: points (B, Q, P, 3) and values (B, Q, P) "
                             f"needed, got {tuple(points.shape)} and {tuple(values.shape)}")
        return splat_bev(points.flatten(1, 2), values.flatten(1), self.pc_range, self.bev_size)

    def align(self, student_map: Tensor, teacher_map: Tensor, gt_bboxes_3d: Optional[Sequence[Tensor]],
              teacher_cls: Optional[Tensor], teacher_box: Optional[Tensor]) -> Tensor:
        """Weighted loss between the maps ``(B, H, W)`` (teacher detached)."""
        if student_map.shape != teacher_map.shape:
            raise ValueError(f"{type(self).__name__}: student and teacher batch sizes differ "
                             f"({student_map.shape[0]} vs {teacher_map.shape[0]})")
        weights = None
        if self.region_weights is not None:
            if gt_bboxes_3d is None or teacher_cls is None or teacher_box is None:
                raise ValueError(f"{type(self).__name__} with region_weights needs gt_bboxes_3d, "
                                 "teacher_cls and teacher_box")
            weights = self.region_weights(
                gt_bboxes_3d, take_last_queries(teacher_cls.detach(), self.num_queries, "teacher_cls"),
                take_last_queries(teacher_box.detach(), self.num_queries, "teacher_box"))
        loss = field_divergence(student_map, teacher_map.detach(), weights, self.loss_type,
                                self.temperature)
        return self.loss_weight * loss


@MODELS.register_module()
class QueryFieldLoss(_BEVFieldLoss):
    """BEV receptive-field loss from sampled locations (sparse heads: RayDN's DFA key points).

    Args:
        pc_range: ``(6,)`` point-cloud range; the grid covers its ``x`` / ``y`` extent.
        bev_size: ``(H, W)`` BEV cells.
        loss_type: ``'density'`` (maps as mass distributions), ``'kl'`` (spatial softmax) or
            ``'mse'``.
        temperature: softmax temperature of ``'kl'`` (must stay 1.0 for the others).
        value_type: how ``*_values`` are read, one of :data:`VALUE_TYPES` (see
            :func:`query_values`).
        num_queries: keep the last ``num_queries`` queries of every query tensor (drops the
            DN queries the student puts in front while training); None keeps all.
        region_weights: ``RegionWeights`` arguments (without ``type``, ``pc_range``,
            ``bev_size``) to weight cells by the DistillBEV decomposition; None: uniform.
        loss_weight: factor on the loss.
    """

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int] = (128, 128),
                 loss_type: str = "density", temperature: float = 1.0, value_type: str = "raw",
                 num_queries: Optional[int] = None, region_weights: Optional[dict] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__(pc_range, bev_size, loss_type, temperature, num_queries, region_weights,
                         loss_weight)
        if value_type not in VALUE_TYPES:
            raise ValueError(f"QueryFieldLoss: value_type must be one of {VALUE_TYPES}, got {value_type!r}")
        self.value_type = value_type

    def _field(self, points: Tensor, values: Tensor, side: str) -> Tensor:
        """BEV map of one side from ``points (B, Q, P, 3)`` or ``(B, Q, 3)`` and its values."""
        if points.dim() == 3:
            points = points.unsqueeze(2)
        if points.dim() != 4 or points.shape[-1] != 3:
            raise ValueError(f"{side}_points must be (B, Q, P, 3) or (B, Q, 3), got {tuple(points.shape)}")
        values = query_values(values, self.value_type, points.shape[2])
        if values.shape != points.shape[:3]:
            raise ValueError(f"{side}_values give {tuple(values.shape)} per location, {side}_points "
                             f"{tuple(points.shape)} need (B, Q, P) = {tuple(points.shape[:3])}")
        points = take_last_queries(points, self.num_queries, f"{side}_points")
        values = take_last_queries(values, self.num_queries, f"{side}_values")
        return self.render(points, values)

    def forward(self, student_points: Tensor, student_values: Tensor, teacher_points: Tensor,
                teacher_values: Tensor, gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
                teacher_cls: Optional[Tensor] = None, teacher_box: Optional[Tensor] = None) -> Tensor:
        """Loss between the student's and the teacher's BEV query fields.

        Args:
            student_points / teacher_points: ``(B, Q, P, 3)`` (or ``(B, Q, 3)``) metric
                LiDAR-frame locations; Q and P may differ between the two.
            student_values / teacher_values: per ``value_type`` (see :func:`query_values`).
            gt_bboxes_3d: B tensors ``(M_b, 9)``; teacher_cls ``(B, Q_t, C)`` logits and
                teacher_box ``(B, Q_t, 10)`` codes: needed with ``region_weights`` only.

        Returns:
            Weighted scalar loss.
        """
        student_map = self._field(student_points, student_values, "student")
        with torch.no_grad():
            teacher_map = self._field(teacher_points.detach(), teacher_values.detach(), "teacher")
        return self.align(student_map, teacher_map, gt_bboxes_3d, teacher_cls, teacher_box)


@MODELS.register_module()
class DenseQueryFieldLoss(_BEVFieldLoss):
    """BEV receptive-field loss of dense-attention heads (StreamPETR).

    Args:
        pc_range: ``(6,)`` range of the heads' normalised reference points; the grid covers
            its ``x`` / ``y`` extent.
        position_range: ``(6,)`` range of the normalised frustum points (the head's).
        num_points: most-attended tokens sampled per query.
        bev_size, loss_type, temperature, num_queries, region_weights, loss_weight: as in
            :class:`QueryFieldLoss`.
    """

    def __init__(self, pc_range: Sequence[float], position_range: Sequence[float],
                 num_points: int = 13, bev_size: Sequence[int] = (128, 128), loss_type: str = "density",
                 temperature: float = 1.0, num_queries: Optional[int] = None,
                 region_weights: Optional[dict] = None, loss_weight: float = 1.0) -> None:
        super().__init__(pc_range, bev_size, loss_type, temperature, num_queries, region_weights,
                         loss_weight)
        if len(position_range) != 6 or num_points <= 0:
            raise ValueError(f"DenseQueryFieldLoss needs position_range of 6 values and "
                             f"num_points > 0, got {position_range}, {num_points}")
        self.position_range = [float(v) for v in position_range]
        self.num_points = int(num_points)

    def _field(self, attn: Tensor, reference_points: Tensor, token_points: Tensor, side: str) -> Tensor:
        """BEV map of one side (normalised inputs as tapped from the head)."""
        attn = take_last_queries(attn, self.num_queries, f"{side}_attn")
        reference_points = take_last_queries(reference_points, self.num_queries, f"{side}_reference_points")
        ref_low, ref_span = _low_span(self.pc_range, reference_points)
        pos_low, pos_span = _low_span(self.position_range, token_points)
        points, values = dense_query_samples(attn, reference_points * ref_span + ref_low,
                                             token_points * pos_span + pos_low, self.num_points)
        return self.render(points, values)

    def forward(self, student_attn: Tensor, student_reference_points: Tensor,
                student_token_points: Tensor, teacher_attn: Tensor, teacher_reference_points: Tensor,
                teacher_token_points: Tensor, gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
                teacher_cls: Optional[Tensor] = None, teacher_box: Optional[Tensor] = None) -> Tensor:
        """Loss between the student's and the teacher's dense BEV query fields.

        Args:
            student_attn / teacher_attn: ``(B, Q, K)`` cross-attention maps (head-averaged).
            student_reference_points / teacher_reference_points: ``(B, Q, 3)`` normalised to
                ``pc_range``.
            student_token_points / teacher_token_points: ``(B, K, D, 3)`` frustum points
                normalised to ``position_range``.
            gt_bboxes_3d, teacher_cls, teacher_box: as in :meth:`QueryFieldLoss.forward`.

        Returns:
            Weighted scalar loss.
        """
        student_map = self._field(student_attn, student_reference_points, student_token_points, "student")
        with torch.no_grad():
            teacher_map = self._field(teacher_attn.detach(), teacher_reference_points.detach(),
                                      teacher_token_points.detach(), "teacher")
        return self.align(student_map, teacher_map, gt_bboxes_3d, teacher_cls, teacher_box)


def _low_span(value_range: Sequence[float], like: Tensor) -> tuple[Tensor, Tensor]:
    """``(3,)`` lower corner and extent of a ``(6,)`` range, on ``like``'s device and dtype."""
    low = like.new_tensor(value_range[:3])
    return low, like.new_tensor(value_range[3:]) - low
