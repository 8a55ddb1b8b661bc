"""BEV-space feature distillation for sparse (query-based) detectors.

A sparse detector has no BEV feature map, so one FPN level of the student and of the teacher is
lifted onto a BEV grid without parameters (:class:`~..bev.lifting.BEVLifting`: every voxel
centre projected into the cameras, the feature map sampled bilinearly, averaged over the
cameras that see it and reduced over the height levels)::

    B_S = lift(S),   B_T = lift(T)          (B, C, H, W), the teacher detached

and a feature-distillation family is applied to the two BEV maps with a per-cell weight ``m``
(DistillBEV, Wang et al., ICCV 2023)::

    m = R * A,    L = loss_weight * family(B_S, B_T; m)

* ``R`` (``region_weights``): the DistillBEV region decomposition of the grid into TP / FN /
  FP / TN cells from the GT boxes and the teacher's confident predictions, each region with its
  factor (:class:`~.region_weights.RegionWeights`, the same grid as the lifting, so labels and
  lifted cells align); 1 everywhere when ``region_weights=None``.
* ``A`` (``attention=True``): FGD-style spatial attention of the lifted maps,
  ``A(F) = H * W * softmax_HW(mean_C |F| / temperature)``. This project's reading of
  DistillBEV's attentive mask is the cell-wise **maximum of the teacher's and the student's**
  attention, both detached, ``A = max(A(B_T), A(B_S))``: a cell counts when it is salient to
  either network (the teacher's objects and the student's own mistakes). 1 when off.

``family`` (its own ``loss_weight`` is not accepted: ``loss_weight`` here is the one factor)
applies ``m`` through the family's weighted entry point, which normalises it to mean 1 per
sample (a uniform ``m`` gives the family's plain loss on the lifted maps):

* ``FitNetsLoss``: ``mean(m * (B_S - B_T)^2)`` (MSE, DistillBEV's own loss);
* ``ChannelWiseDivergence`` / ``BalancedKLLoss``: each position's KL contribution
  ``p_T (log p_T - log p_S)`` (and the reverse term's) is multiplied by ``m``;
* ``FGDLoss``: its foreground mask is ``R`` on the TP / FN / FP cells and its background mask
  ``R`` on the TN cells, each divided by its sum per sample (FGD's ``1 / area``: FGD's ``alpha``
  and ``beta`` weigh foreground against background); ``A`` is not applied, since FGD already
  weighs the error with its own teacher attention. Without ``region_weights`` every cell is
  background.

Cells seen by no camera are 0 in both lifted maps.
"""
from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Optional

import torch
from torch import Tensor, nn

from ..bev.lifting import BEVLifting
from .bkl import BalancedKLLoss
from .cwd import ChannelWiseDivergence
from .feature_utils import check_feature_maps, check_non_negative, check_positive
from .fgd import FGDLoss, spatial_channel_attention
from .fitnets import FitNetsLoss
from .region_weights import TN, RegionWeights, region_weight_map
from ...registry import MODELS

FAMILIES: dict[str, type[nn.Module]] = {
    "FitNetsLoss": FitNetsLoss,
    "ChannelWiseDivergence": ChannelWiseDivergence,
    "BalancedKLLoss": BalancedKLLoss,
    "FGDLoss": FGDLoss,
}
# Family arguments this loss sets itself.
RESERVED_FAMILY_ARGS = ("loss_weight", "num_queries")


def build_family(cfg: Mapping, loss_name: str) -> nn.Module:
    """The family loss of ``cfg`` (``dict(type=<one of FAMILIES>, **arguments)``), ``loss_weight`` 1."""
    args = copy.deepcopy(dict(cfg))
    family = args.pop("type", None)
    if family not in FAMILIES:
        raise ValueError(f"{loss_name}: family type must be one of {sorted(FAMILIES)}, got {family!r}"
                         f"{_close(str(family), FAMILIES)}")
    reserved = sorted(set(args) & set(RESERVED_FAMILY_ARGS))
    if reserved:
        raise ValueError(f"{loss_name}: family {family} may not set {reserved} ({loss_name}'s own "
                         "loss_weight is the one factor; BEV maps have no queries)")
    params = inspect.signature(FAMILIES[family]).parameters
    allowed = [key for key in params if key not in RESERVED_FAMILY_ARGS]
    unknown = [key for key in args if key not in allowed]
    missing = [key for key, p in params.items() if p.default is p.empty and key not in args]
    if unknown or missing:
        hints = ", ".join(f"{key!r}{_close(key, allowed)}" for key in unknown)
        raise ValueError(f"{loss_name}: family {family} takes {allowed}; unknown: [{hints}], "
                         f"missing: {missing}")
    return FAMILIES[family](loss_weight=1.0, **args)


def _close(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@MODELS.register_module()
class BEVFeatureLoss(nn.Module):
    """Feature distillation on lifted BEV maps, weighted by DistillBEV regions and attention.

    Args:
        pc_range: ``(6,)`` range of the BEV grid (and of the region labels).
        bev_size: ``(H, W)`` cells.
        num_heights: voxel levels per cell of the lifting.
        height_reduction: ``'mean'`` or ``'max'`` over the height levels.
        family: the feature loss on the BEV maps, ``dict(type=..., **arguments)`` with type one
            of :data:`FAMILIES` (without ``loss_weight``); None: ``dict(type='FitNetsLoss')``.
        region_weights: ``RegionWeights`` arguments without ``pc_range`` / ``bev_size`` (taken
            from this loss); None: uniform.
        attention: multiply the cell weights by the spatial attention of the lifted maps.
        attention_temperature: temperature of that attention's softmax.
        loss_weight: factor on the loss.
    """

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int] = (128, 128),
                 num_heights: int = 4, height_reduction: str = "mean", family: Optional[dict] = None,
                 region_weights: Optional[dict] = None, attention: bool = True,
                 attention_temperature: float = 0.5, loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        self.lifting = BEVLifting(pc_range, bev_size, num_heights, height_reduction)
        self.family = build_family(family if family is not None else dict(type="FitNetsLoss"), name)
        self.region_weights = None
        if region_weights is not None:
            if {"pc_range", "bev_size"} & set(region_weights):
                raise ValueError(f"{name}: region_weights takes pc_range and bev_size from the loss; "
                                 f"remove them from region_weights={region_weights}")
            self.region_weights = RegionWeights(pc_range=self.lifting.pc_range, bev_size=self.lifting.bev_size,
                                                **copy.deepcopy(region_weights))
        self.attention = bool(attention)
        self.attention_temperature = check_positive(attention_temperature, "attention_temperature", name)
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", name)

    def forward(self, student: Tensor, teacher: Tensor, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]],
                gt_bboxes_3d: Optional[Sequence[Tensor]] = None, teacher_cls: Optional[Tensor] = None,
                teacher_box: Optional[Tensor] = None, progress: float = 0.0) -> Tensor:
        """Weighted family loss between the lifted student and teacher maps.

        Args:
            student: ``(B * N, C, H_s, W_s)`` student FPN level (cameras folded, sample-major).
            teacher: ``(B * N, C, H_t, W_t)`` the teacher's (detached).
            lidar2img: ``(B, N, 4, 4)``; pad_shape: B pairs ``(H_img, W_img)``.
            gt_bboxes_3d: B tensors ``(M_b, 9)``; teacher_cls ``(B, Q, C)`` logits and teacher_box
                ``(B, Q, 10)`` codes of the teacher's last layer: needed with ``region_weights``.
            progress: training progress in ``[0, 1]`` (``BalancedKLLoss`` only).

        Returns:
            Scalar loss, already multiplied by ``loss_weight``.
        """
        student_bev, teacher_bev, labels = self.bev_maps(student, teacher, lidar2img, pad_shape,
                                                         gt_bboxes_3d, teacher_cls, teacher_box)
        if isinstance(self.family, FGDLoss):
            fg_mask, bg_mask = self.fgd_masks(labels, student_bev)
            loss = self.family.masked(student_bev, teacher_bev, fg_mask, bg_mask)
        else:
            weight = self.cell_weights(student_bev, teacher_bev, labels)
            if isinstance(self.family, BalancedKLLoss):
                loss = self.family.weighted(student_bev, teacher_bev, weight, progress)
            else:
                loss = self.family.weighted(student_bev, teacher_bev, weight)
        return self.loss_weight * loss

    def bev_maps(self, student: Tensor, teacher: Tensor, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]],
                 gt_bboxes_3d: Optional[Sequence[Tensor]] = None, teacher_cls: Optional[Tensor] = None,
                 teacher_box: Optional[Tensor] = None, progress: float = 0.0
                 ) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """What the loss compares (arguments as in :meth:`forward`; ``progress`` is unused).

        Returns:
            The lifted student map ``(B, C, H, W)`` (differentiable), the lifted teacher map
            ``(B, C, H, W)`` (no gradient) and the region labels ``(B, H, W)`` (``None``
            without ``region_weights``). ``tools/visualize.py`` draws them.
        """
        name = type(self).__name__
        check_feature_maps(student, teacher, name)
        if lidar2img.dim() != 4 or lidar2img.shape[0] * lidar2img.shape[1] != student.shape[0]:
            raise ValueError(f"{name}: student {tuple(student.shape)} must hold B*N camera feature maps "
                             f"for lidar2img (B, N, 4, 4), got lidar2img {tuple(lidar2img.shape)}")
        plan = self.lifting.plan(lidar2img, pad_shape, student.shape[-2:])
        student_bev = self.lifting.lift(student, plan)
        if teacher.shape[-2:] != student.shape[-2:]:  # a teacher map of another resolution
            plan = self.lifting.plan(lidar2img, pad_shape, teacher.shape[-2:])
        with torch.no_grad():
            teacher_bev = self.lifting.lift(teacher.detach(), plan)
        return student_bev, teacher_bev, self._labels(gt_bboxes_3d, teacher_cls, teacher_box)

    @torch.no_grad()
    def cell_weights(self, student_bev: Tensor, teacher_bev: Tensor, labels: Optional[Tensor]) -> Tensor:
        """``m = R * A`` (module docstring), ``(B, H, W)``, before the family's mean-1 normalisation.

        Args:
            student_bev / teacher_bev: ``(B, C, H, W)`` lifted maps; labels: ``(B, H, W)`` region
                labels or None.
        """
        weight = self._region_factors(labels, teacher_bev)
        if self.attention:
            attention_s, _ = spatial_channel_attention(student_bev.detach(), self.attention_temperature)
            attention_t, _ = spatial_channel_attention(teacher_bev, self.attention_temperature)
            weight = weight * torch.maximum(attention_s, attention_t)
        return weight

    @torch.no_grad()
    def fgd_masks(self, labels: Optional[Tensor], bev: Tensor) -> tuple[Tensor, Tensor]:
        """FGD's foreground (TP / FN / FP) and background (TN) masks ``(B, H, W)`` of the
        region factors, each summing to 1 per sample (0 where a sample has no such cell)."""
        factors = self._region_factors(labels, bev)
        background = torch.ones_like(factors, dtype=torch.bool) if labels is None else labels == TN
        masks = []
        for part in (~background, background):
            mask = factors * part
            masks.append(mask / mask.flatten(1).sum(dim=1).clamp(min=1e-12)[:, None, None])
        return masks[0], masks[1]

    def _region_factors(self, labels: Optional[Tensor], bev: Tensor) -> Tensor:
        """``R`` ``(B, H, W)``: the region factors of ``labels``, or ones."""
        if labels is None:
            return bev.new_ones((bev.shape[0], *bev.shape[2:]))
        return region_weight_map(labels, self.region_weights.region_weights, self.region_weights.balance).to(bev)

    def _labels(self, gt_bboxes_3d: Optional[Sequence[Tensor]], teacher_cls: Optional[Tensor],
                teacher_box: Optional[Tensor]) -> Optional[Tensor]:
        """DistillBEV region labels ``(B, H, W)`` when ``region_weights`` is set, else None."""
        if self.region_weights is None:
            return None
        if gt_bboxes_3d is None or teacher_cls is None or teacher_box is None:
            raise ValueError(f"{type(self).__name__} with region_weights needs gt_bboxes_3d "
                             "('batch.gt_bboxes_3d'), teacher_cls and teacher_box (the teacher's "
                             "last-layer class logits and box codes taps) in its inputs")
        return self.region_weights.labels(gt_bboxes_3d, teacher_cls.detach(), teacher_box.detach())

    def extra_repr(self) -> str:
        """Constructor arguments not shown by the submodules."""
        return (f"region_weights={self.region_weights is not None}, attention={self.attention}, "
                f"attention_temperature={self.attention_temperature}, loss_weight={self.loss_weight}")
