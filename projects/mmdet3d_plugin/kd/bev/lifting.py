"""Parameter-free lifting of camera feature maps into a BEV grid (Simple-BEV style).

The grid is the one of :func:`~..losses.region_weights.bev_cell_centers`: ``bev_size = (H, W)``
cells over the ``x`` / ``y`` extent of ``pc_range``, row ``i`` along ``y``, column ``j`` along
``x``, cell centres at ``x_min + (j + 0.5) * cell_x``, so a lifted map and the DistillBEV region
labels align cell for cell. Every cell holds ``Z = num_heights`` voxel centres evenly spaced
over the ``z`` extent (cell-centred): ``z_k = z_min + (k + 0.5) * (z_max - z_min) / Z``.

A voxel centre ``p`` is projected into camera ``n`` with ``lidar2img``::

    (u d, v d, d, 1) = lidar2img_n @ (p, 1)

and is **seen** by the camera when ``d > eps`` and ``(u, v)`` lies in ``[0, W_img) x [0, H_img)``
(the padded image the feature map covers). The feature map ``F_n`` is sampled bilinearly there
(the convention of ``grid_sample(align_corners=False, padding_mode='zeros')``: feature
coordinates ``u W_f / W_img - 0.5``, ``v H_f / H_img - 0.5``, taps outside the map weigh 0) and
averaged over the cameras that see the voxel::

    V(p) = sum_n seen_n(p) F_n(u_n, v_n) / max(1, sum_n seen_n(p))        (0 if none sees p)

The cell's value reduces its ``Z`` voxels: ``'mean'`` over the levels seen by some camera
(0 if none), or ``'max'`` over those levels (0 if none).

Only the seen (voxel, camera) pairs are sampled (a voxel is typically seen by one or two of six
cameras, so sampling every camera everywhere would do about five times the work): the
geometry (:meth:`BEVLifting.plan`, no gradient) lists the four bilinear taps of every seen pair
with its weight, already divided by the cameras (and, for ``'mean'``, the levels) that see the
voxel, grouped in bags (a cell for ``'mean'``, a voxel for ``'max'``); :meth:`BEVLifting.lift`
is then one ``embedding_bag`` over the ``(B N H_f W_f, C)`` feature table, whose backward is
one ``index_add``. The teacher's and the student's maps share a plan. Computation is float32,
vectorised over samples, cameras, levels and cells; the module has no parameters and no
buffers.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses.region_weights import bev_cell_centers

HEIGHT_REDUCTIONS = ("mean", "max")
# Smallest depth (metres) at which a voxel counts as in front of a camera.
MIN_DEPTH = 1e-2


class LiftingPlan(NamedTuple):
    """The bilinear taps of a lifting (:meth:`BEVLifting.plan`), bag by bag.

    ``rows`` ``(T,)`` index the ``(B N H_f W_f, C)`` feature table, ``weights`` ``(T,)`` are the
    bilinear weights already divided by the cameras (and, for ``'mean'``, the levels) that see
    the voxel, ``offsets`` ``(bags,)`` is the first tap of each bag, ``level_seen``
    ``(B, Z, H*W)`` bool says which voxels some camera sees.
    """

    rows: Tensor
    weights: Tensor
    offsets: Tensor
    level_seen: Tensor
    batch: int
    cams: int
    feature_size: tuple[int, int]



class BEVLifting(nn.Module):
    """Lift one FPN level of every camera into a ``(B, C, H, W)`` BEV map.

    Args:
        pc_range: ``(x_min, y_min, z_min, x_max, y_max, z_max)`` of the grid, LiDAR frame.
        bev_size: ``(H, W)`` cells (rows along ``y``, columns along ``x``).
        num_heights: voxel levels per cell over the ``z`` extent.
        height_reduction: ``'mean'`` or ``'max'`` over the seen levels.
    """

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int] = (128, 128),
                 num_heights: int = 4, height_reduction: str = "mean") -> None:
        super().__init__()
        if len(pc_range) != 6 or not (pc_range[3] > pc_range[0] and pc_range[4] > pc_range[1]
                                      and pc_range[5] > pc_range[2]):
            raise ValueError(f"BEVLifting: pc_range must be (x_min, y_min, z_min, x_max, y_max, z_max) "
                             f"with each max > min, got {pc_range}")
        if len(bev_size) != 2 or min(int(s) for s in bev_size) < 1:
            raise ValueError(f"BEVLifting: bev_size must be (H, W) of positive ints, got {bev_size}")
        if isinstance(num_heights, bool) or int(num_heights) != num_heights or num_heights < 1:
            raise ValueError(f"BEVLifting: num_heights must be a positive int, got {num_heights!r}")
        if height_reduction not in HEIGHT_REDUCTIONS:
            raise ValueError(f"BEVLifting: height_reduction must be one of {HEIGHT_REDUCTIONS}, "
                             f"got {height_reduction!r}")
        self.pc_range = [float(v) for v in pc_range]
        self.bev_size = (int(bev_size[0]), int(bev_size[1]))
        self.num_heights = int(num_heights)
        self.height_reduction = height_reduction

    def heights(self) -> list[float]:
        """The ``Z`` voxel-centre heights (metres), cell-centred over the ``z`` extent."""
        z_min, z_max = self.pc_range[2], self.pc_range[5]
        step = (z_max - z_min) / self.num_heights
        return [z_min + (k + 0.5) * step for k in range(self.num_heights)]

    def forward(self, features: Tensor, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]]) -> Tensor:
        """Lifted BEV map: :meth:`lift` of :meth:`plan`.

        Args:
            features: ``(B * N, C, H_f, W_f)`` one FPN level, cameras folded into the batch
                (sample-major: row ``b * N + n`` is camera ``n`` of sample ``b``).
            lidar2img: ``(B, N, 4, 4)`` LiDAR -> homogeneous image pixels.
            pad_shape: B pairs ``(H_img, W_img)``: the image size the feature map covers.

        Returns:
            ``(B, C, H, W)`` float32 BEV map (differentiable w.r.t. ``features``).
        """
        return self.lift(features, self.plan(lidar2img, pad_shape, features.shape[-2:]))

    @torch.no_grad()
    def plan(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]], feature_size: Sequence[int]) -> LiftingPlan:
        """The bilinear taps every BEV value reads, for feature maps of ``feature_size``.

        It depends on the geometry only, so maps of the same size lifted with the same cameras
        (the teacher's and the student's) share one plan.

        Args:
            lidar2img: ``(B, N, 4, 4)``; pad_shape: B pairs ``(H_img, W_img)``;
            feature_size: ``(H_f, W_f)`` of the maps to lift.
        """
        batch, cams = lidar2img.shape[:2]
        feat_h, feat_w = int(feature_size[0]), int(feature_size[1])
        pixels, seen = self.project(lidar2img, pad_shape)
        cameras_seeing = seen.sum(dim=1)  # (B, Z, K)
        level_seen = cameras_seeing > 0
        if self.height_reduction == "mean":
            # One bag per cell: the weights divide by the cameras and by the levels seen.
            share = cameras_seeing * level_seen.sum(dim=1, keepdim=True)
            order = seen.permute(0, 3, 2, 1)  # (B, K, Z, N): pairs come cell by cell
            per_bag = order.sum(dim=(2, 3))
            sample, cell, level, camera = order.nonzero(as_tuple=True)
        else:
            share = cameras_seeing
            order = seen.permute(0, 2, 3, 1)  # (B, Z, K, N): pairs come voxel by voxel
            per_bag = order.sum(dim=3)
            sample, level, cell, camera = order.nonzero(as_tuple=True)
        per_bag = per_bag.reshape(-1)
        scale = pixels.new_tensor([[feat_w / float(shape[1]), feat_h / float(shape[0])] for shape in pad_shape])
        # Feature-map coordinates of the seen voxel centres (align_corners=False convention).
        coords = pixels[sample, camera, level, cell] * scale[sample] - 0.5
        rows, weights = self._bilinear_taps(coords, feat_h, feat_w)
        rows = rows + ((sample * cams + camera) * (feat_h * feat_w)).unsqueeze(1)
        weights = weights / share[sample, level, cell].unsqueeze(1).to(weights.dtype)
        offsets = torch.cumsum(per_bag * 4, dim=0) - per_bag * 4
        return LiftingPlan(rows.reshape(-1), weights.reshape(-1), offsets, level_seen, batch, cams,
                           (feat_h, feat_w))

    def lift(self, features: Tensor, plan: LiftingPlan) -> Tensor:
        """``(B, C, H, W)`` float32 BEV map of ``(B * N, C, H_f, W_f)`` features along ``plan``.

        One ``embedding_bag`` (weighted sum of the taps of each bag) over the ``(B N H_f W_f, C)``
        feature table: a bag is a cell (``'mean'``) or a voxel (``'max'``, then the maximum over
        the seen levels).
        """
        maps = plan.batch * plan.cams
        if features.dim() != 4 or features.shape[0] != maps:
            raise ValueError(f"BEVLifting: features must be (B*N, C, H_f, W_f) = ({maps}, C, H_f, W_f) for "
                             f"B={plan.batch} samples of N={plan.cams} cameras, got {tuple(features.shape)}")
        if tuple(features.shape[-2:]) != plan.feature_size:
            raise ValueError(f"BEVLifting: features {tuple(features.shape)} do not match the plan, made for "
                             f"({maps}, C, {plan.feature_size[0]}, {plan.feature_size[1]})")
        if not features.is_floating_point():
            raise ValueError(f"BEVLifting: features must be a float tensor, got {features.dtype}")
        channels = features.shape[1]
        table = features.float().permute(0, 2, 3, 1).reshape(-1, channels)
        bags = F.embedding_bag(plan.rows, table, plan.offsets, mode="sum", per_sample_weights=plan.weights)
        if self.height_reduction == "max":
            value = bags.view(plan.batch, self.num_heights, -1, channels)
            level_seen = plan.level_seen.unsqueeze(-1)
            lowest = torch.full_like(value, torch.finfo(value.dtype).min)
            bags = torch.where(level_seen, value, lowest).amax(dim=1)
            bags = torch.where(level_seen.any(dim=1), bags, torch.zeros_like(bags))
        return bags.view(plan.batch, -1, channels).permute(0, 2, 1).reshape(plan.batch, channels, *self.bev_size)

    @staticmethod
    def _bilinear_taps(coords: Tensor, feat_h: int, feat_w: int) -> tuple[Tensor, Tensor]:
        """The four bilinear taps of ``(M, 2)`` ``(x, y)`` feature coordinates.

        Returns ``(M, 4)`` rows ``y * W_f + x`` within the camera's map and ``(M, 4)`` bilinear
        weights, 0 for a tap outside the map (zero padding, as
        ``grid_sample(padding_mode='zeros')``); the row of such a tap is clamped into the map.
        """
        low = coords.floor()
        frac = coords - low
        low = low.long()
        offsets = coords.new_tensor([[0, 0], [1, 0], [0, 1], [1, 1]]).long()
        taps = low.unsqueeze(1) + offsets  # (M, 4, 2)
        near = torch.stack((1.0 - frac, frac), dim=1)  # (M, 2 [low, high], 2 [x, y])
        weights = near[:, offsets[:, 0], 0] * near[:, offsets[:, 1], 1]
        size = coords.new_tensor([feat_w, feat_h]).long()
        inside = ((taps >= 0) & (taps < size)).all(dim=-1)
        taps = torch.minimum(taps.clamp(min=0), size - 1)
        return taps[..., 1] * feat_w + taps[..., 0], torch.where(inside, weights, torch.zeros_like(weights))

    @torch.no_grad()
    def visibility(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]]) -> Tensor:
        """Fraction in ``[0, 1]`` of each cell's height levels seen by at least one camera.

        Args:
            lidar2img: ``(B, N, 4, 4)``; pad_shape: B pairs ``(H_img, W_img)``.

        Returns:
            ``(B, H, W)`` float32.
        """
        seen = self.project(lidar2img, pad_shape)[1]
        return seen.any(dim=1).float().mean(dim=1).view(lidar2img.shape[0], *self.bev_size)

    def project(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Where every voxel centre lands in every camera.

        Args:
            lidar2img: ``(B, N, 4, 4)``; pad_shape: B pairs ``(H_img, W_img)``.

        Returns:
            ``(B, N, Z, H*W, 2)`` float32 pixels ``(u, v)`` in the padded image (levels in the
            order of :meth:`heights`, cells row-major) and the ``(B, N, Z, H*W)`` bool mask of
            the voxels the camera sees.
        """
        self._check_geometry(lidar2img, pad_shape)
        matrices = lidar2img.float()
        xy = bev_cell_centers(self.pc_range, self.bev_size, matrices.device).view(1, -1, 2)
        heights = matrices.new_tensor(self.heights()).view(-1, 1, 1).expand(-1, xy.shape[1], 1)
        points = torch.cat((xy.expand(len(heights), -1, -1), heights, torch.ones_like(heights)), dim=-1)
        homog = torch.einsum("bnij,zkj->bnzki", matrices, points)
        depth = homog[..., 2]
        pixels = homog[..., :2] / depth.clamp(min=MIN_DEPTH).unsqueeze(-1)
        sizes = matrices.new_tensor([[float(shape[1]), float(shape[0])] for shape in pad_shape])
        inside = ((pixels >= 0) & (pixels < sizes[:, None, None, None, :])).all(dim=-1) & (depth > MIN_DEPTH)
        return pixels, inside

    def _check_geometry(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]]) -> None:
        """Raise ``ValueError`` unless ``lidar2img`` is ``(B, N, 4, 4)`` with B ``pad_shape`` pairs."""
        if lidar2img.dim() != 4 or lidar2img.shape[-2:] != (4, 4):
            raise ValueError(f"BEVLifting: lidar2img must be (B, N, 4, 4), got {tuple(lidar2img.shape)}")
        if len(pad_shape) != lidar2img.shape[0] or any(len(shape) < 2 for shape in pad_shape):
            raise ValueError(f"BEVLifting: pad_shape must hold B={lidar2img.shape[0]} pairs (H_img, W_img) "
                             f"for lidar2img {tuple(lidar2img.shape)}, got {list(pad_shape)}")

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return (f"pc_range={self.pc_range}, bev_size={self.bev_size}, num_heights={self.num_heights}, "
                f"height_reduction={self.height_reduction!r}")
