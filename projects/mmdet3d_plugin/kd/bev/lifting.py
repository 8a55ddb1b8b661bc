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
(``grid_sample``, ``align_corners=False``, normalised coordinates ``2 u / W_img - 1``,
``2 v / H_img - 1``) and averaged over the cameras that see the voxel::

    V(p) = sum_n seen_n(p) F_n(u_n, v_n) / max(1, sum_n seen_n(p))        (0 if none sees p)

The cell's value reduces its ``Z`` voxels: ``'mean'`` over the levels seen by some camera
(0 if none), or ``'max'`` over those levels (0 if none). Computation is float32, vectorised over
cameras and cells; the height levels are a loop (a handful of them) to bound the peak memory to
one level's ``(B, N, C, H*W)`` samples. The module has no parameters and no buffers.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses.region_weights import bev_cell_centers

HEIGHT_REDUCTIONS = ("mean", "max")
# Smallest depth (metres) at which a voxel counts as in front of a camera.
MIN_DEPTH = 1e-2


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
        """Lifted BEV map.

        Args:
            features: ``(B * N, C, H_f, W_f)`` one FPN level, cameras folded into the batch
                (sample-major: row ``b * N + n`` is camera ``n`` of sample ``b``).
            lidar2img: ``(B, N, 4, 4)`` LiDAR -> homogeneous image pixels.
            pad_shape: B pairs ``(H_img, W_img)``: the image size the feature map covers.

        Returns:
            ``(B, C, H, W)`` float32 BEV map (differentiable w.r.t. ``features``).
        """
        batch, cams = self._check(features, lidar2img, pad_shape)
        channels = features.shape[1]
        features = features.float()
        cells = self.bev_size[0] * self.bev_size[1]
        use_max = self.height_reduction == "max"
        lowest = torch.finfo(features.dtype).min
        total = features.new_full((batch, channels, cells), lowest if use_max else 0.0)
        levels_seen = features.new_zeros((batch, 1, cells))
        for height in self.heights():
            grid, seen = self._project(lidar2img, pad_shape, height)
            sampled = F.grid_sample(features, grid.flatten(0, 1).unsqueeze(1), mode="bilinear",
                                    padding_mode="zeros", align_corners=False)
            sampled = sampled.view(batch, cams, channels, cells)
            count = seen.sum(dim=1, keepdim=True)
            value = torch.einsum("bnck,bnk->bck", sampled, seen) / count.clamp(min=1.0)
            level = count > 0
            if use_max:
                total = torch.maximum(total, torch.where(level, value, torch.full_like(value, lowest)))
            else:
                total = total + value
            levels_seen = levels_seen + level.to(value.dtype)
        if use_max:
            total = torch.where(levels_seen > 0, total, torch.zeros_like(total))
        else:
            total = total / levels_seen.clamp(min=1.0)
        return total.view(batch, channels, *self.bev_size)

    @torch.no_grad()
    def visibility(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]]) -> Tensor:
        """Fraction in ``[0, 1]`` of each cell's height levels seen by at least one camera.

        Args:
            lidar2img: ``(B, N, 4, 4)``; pad_shape: B pairs ``(H_img, W_img)``.

        Returns:
            ``(B, H, W)`` float32.
        """
        self._check_geometry(lidar2img, pad_shape)
        seen_levels = [self._project(lidar2img, pad_shape, height)[1].amax(dim=1)
                       for height in self.heights()]
        return torch.stack(seen_levels).mean(dim=0).view(lidar2img.shape[0], *self.bev_size)

    def _project(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]],
                 height: float) -> tuple[Tensor, Tensor]:
        """Sampling grid ``(B, N, H*W, 2)`` (normalised; 0 where unseen) and ``(B, N, H*W)``
        float seen mask of the voxel centres at ``height``."""
        matrices = lidar2img.float()
        xy = bev_cell_centers(self.pc_range, self.bev_size, matrices.device).view(-1, 2)
        points = torch.cat((xy, torch.full_like(xy[:, :1], height), torch.ones_like(xy[:, :1])), dim=1)
        homog = torch.einsum("bnij,kj->bnki", matrices, points)
        depth = homog[..., 2]
        pixels = homog[..., :2] / depth.clamp(min=MIN_DEPTH).unsqueeze(-1)
        sizes = matrices.new_tensor([[float(shape[1]), float(shape[0])] for shape in pad_shape])
        sizes = sizes[:, None, None, :]
        inside = ((pixels >= 0) & (pixels < sizes)).all(dim=-1) & (depth > MIN_DEPTH)
        grid = torch.where(inside.unsqueeze(-1), 2.0 * pixels / sizes - 1.0, torch.zeros_like(pixels))
        return grid, inside.to(matrices.dtype)

    def _check_geometry(self, lidar2img: Tensor, pad_shape: Sequence[Sequence[int]]) -> None:
        """Raise ``ValueError`` unless ``lidar2img`` is ``(B, N, 4, 4)`` with B ``pad_shape`` pairs."""
        if lidar2img.dim() != 4 or lidar2img.shape[-2:] != (4, 4):
            raise ValueError(f"BEVLifting: lidar2img must be (B, N, 4, 4), got {tuple(lidar2img.shape)}")
        if len(pad_shape) != lidar2img.shape[0] or any(len(shape) < 2 for shape in pad_shape):
            raise ValueError(f"BEVLifting: pad_shape must hold B={lidar2img.shape[0]} pairs (H_img, W_img) "
                             f"for lidar2img {tuple(lidar2img.shape)}, got {list(pad_shape)}")

    def _check(self, features: Tensor, lidar2img: Tensor,
               pad_shape: Sequence[Sequence[int]]) -> tuple[int, int]:
        """``(B, N)`` after checking the inputs of :meth:`forward`."""
        self._check_geometry(lidar2img, pad_shape)
        batch, cams = lidar2img.shape[:2]
        if features.dim() != 4 or features.shape[0] != batch * cams:
            raise ValueError(f"BEVLifting: features must be (B*N, C, H_f, W_f) = ({batch * cams}, C, H_f, W_f) "
                             f"for lidar2img {tuple(lidar2img.shape)}, got {tuple(features.shape)}")
        if not features.is_floating_point():
            raise ValueError(f"BEVLifting: features must be a float tensor, got {features.dtype}")
        return batch, cams

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return (f"pc_range={self.pc_range}, bev_size={self.bev_size}, num_heights={self.num_heights}, "
                f"height_reduction={self.height_reduction!r}")
