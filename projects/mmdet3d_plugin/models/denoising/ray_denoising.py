"""Query denoising of RayDN: StreamPETR's box-noise groups plus ray denoising groups.

For a batch with ``T`` GT boxes in all, the head gets ``scalar`` **box-noise groups** (each
GT's centre jittered uniformly within ``noise_scale * (size / 2 + noise_trans)``; a query
whose jitter norm exceeds ``split`` is labelled background) and ``raydn_group`` **ray
groups** of ``raydn_num`` copies per GT. Every ray copy is moved along the camera ray through
the GT centre by ``step * mean(l, w, h) / 2`` with ``step = (Beta(alpha, beta) * 2 - 1) *
radius``: the centre is projected with ``lidar2img``, shifted in depth and projected back.
The copy with the smallest ``|step|`` is the only positive (its step becomes ``|step|``, or a
uniform draw in ``(-split, split)`` when even that exceeds ``split``, as upstream); the others
are depth hard negatives. A GT visible in several cameras uses the last of them (upstream
overwrites camera after camera); a GT seen by none keeps its centre.

Queries are laid out per sample as ``[group 0 | group 1 | ... | matching | propagated]``,
each group ``single_pad = max_b(M_b)`` long. The attention mask keeps groups apart (the copies
of one ray group see each other) and hides all denoising queries from matching and
propagated queries.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Beta

from ...core.bbox.box_layout import BOX_DIM, H, L, X, Z
from .denoising import DenoisingQueries, build_dn_queries


def ray_steps(
    num_gts: int, raydn_num: int, sampler: Beta, radius: float, split: float, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Depth steps of ``raydn_num`` copies of each GT, in units of half the mean box size.

    Args:
        num_gts: ``T``; raydn_num: copies per GT; sampler: the Beta distribution;
        radius: steps lie in ``[-radius, radius]``; split: largest positive ``|step|``.

    Returns:
        ``steps`` ``(raydn_num, T)`` and ``positive`` ``(raydn_num, T)`` bool with exactly
        one True per column (the copy of smallest ``|step|``).
    """
    steps = (sampler.sample((raydn_num * num_gts,)).to(device) * 2.0 - 1.0) * radius
    steps = steps.view(raydn_num, num_gts)
    min_value, min_index = steps.abs().min(dim=0)
    redraw = min_value > split
    fresh = (torch.rand(num_gts, device=device) * 2.0 - 1.0) * split
    min_value = torch.where(redraw, fresh, min_value)
    steps = steps.scatter(0, min_index.unsqueeze(0), min_value.unsqueeze(0))
    positive = torch.zeros_like(steps, dtype=torch.bool).scatter(
        0, min_index.unsqueeze(0), torch.ones_like(min_index.unsqueeze(0), dtype=torch.bool)
    )
    return steps, positive


def shift_along_camera_rays(
    centres: Tensor, batch_idx: Tensor, shift: Tensor, lidar2img: Tensor, pad_shape: Sequence[int]
) -> Tensor:
    """Move points along the ray of the (last) camera that sees them.

    Args:
        centres: ``(K, 3)`` metric points in the LiDAR frame.
        batch_idx: ``(K,)`` sample of each point.
        shift: ``(K,)`` depth change in metres.
        lidar2img: ``(B, N, 4, 4)``.
        pad_shape: ``(H, W)`` of the padded image.

    Returns:
        ``(K, 3)`` shifted points; points no camera sees (in front, inside the image) are
        returned unchanged.
    """
    mats = lidar2img[batch_idx]
    homo = torch.cat([centres, torch.ones_like(centres[:, :1])], dim=-1)
    cam = torch.einsum("knij,kj->kni", mats, homo)
    depth = cam[..., 2]
    in_front = depth > 0
    uv = cam[..., :2] / (depth + torch.where(in_front, 1e-6, -1e-6)).unsqueeze(-1)
    height, width = pad_shape
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
    valid = in_front & inside
    num_cams = lidar2img.shape[1]
    cam_ids = torch.arange(num_cams, device=centres.device).expand_as(valid)
    last = torch.where(valid, cam_ids, -1).max(dim=1).values
    seen = last >= 0
    pick = last.clamp(min=0)
    rows = torch.arange(centres.shape[0], device=centres.device)
    new_depth = depth[rows, pick] + shift
    moved = torch.cat([uv[rows, pick] * new_depth.unsqueeze(-1), new_depth.unsqueeze(-1),
                       cam[rows, pick, 3:4]], dim=-1)
    back = torch.einsum("kij,kj->ki", torch.linalg.inv(mats[rows, pick]), moved)[:, :3]
    return torch.where(seen.unsqueeze(-1), back, centres)


def normalise_centres(centres: Tensor, pc_range: Tensor) -> Tensor:
    """Map ``(..., 3)`` metric points to ``[0, 1]`` of ``pc_range`` ``(6,)`` (clamped)."""
    return ((centres - pc_range[:3]) / (pc_range[3:6] - pc_range[:3])).clamp(0.0, 1.0)


def dn_attention_mask(
    single_pad: int, scalar: int, raydn_group: int, raydn_num: int,
    num_query: int, num_propagated: int, memory_len: int, device: torch.device,
) -> Tensor:
    """Self-attention mask of the denoising layout (True = blocked).

    Returns:
        ``(pad_size + num_query + num_propagated, pad_size + num_query + memory_len)`` bool
        with ``pad_size = single_pad * (scalar + raydn_group * raydn_num)``: box-noise group
        blocks see only themselves, a ray group's copies see each other, every denoising query
        sees matching, propagated and memory queries, and no other query sees a denoising one.
    """
    blocks = [single_pad] * scalar + [single_pad * raydn_num] * raydn_group
    pad_size = sum(blocks)
    rows = pad_size + num_query + num_propagated
    mask = torch.zeros(rows, pad_size + num_query + memory_len, dtype=torch.bool, device=device)
    mask[pad_size:, :pad_size] = True
    start = 0
    for size in blocks:
        mask[start:start + size, :start] = True
        mask[start:start + size, start + size:pad_size] = True
        start += size
    return mask


class RayDenoising:
    """Builds RayDN's denoising queries for one training batch (a state-free helper).

    The box-noise groups come from StreamPETR's :func:`build_dn_queries`; the ray groups are
    appended after them in the same :class:`DenoisingQueries` layout (group ``g`` occupies
    slots ``[g * group_size, (g + 1) * group_size)``), so the StreamPETR denoising losses
    score both kinds.

    Args:
        num_classes: Index used as the background label.
        scalar: Box-noise groups.
        noise_scale: Centre jitter scale of the box groups.
        noise_trans: Added to half the box size before scaling the jitter.
        split: Jitter norm (box groups) / ``|step|`` (ray groups) above which a query is
            background.
        raydn_group: Ray groups; raydn_num: copies per GT in a ray group.
        raydn_alpha / raydn_beta: Beta distribution of the ray steps.
        raydn_radius: Steps lie in ``[-radius, radius]`` half mean box sizes.
    """

    def __init__(self, num_classes: int, scalar: int, noise_scale: float, noise_trans: float,
                 split: float, raydn_group: int, raydn_num: int, raydn_alpha: float,
                 raydn_beta: float, raydn_radius: float) -> None:
        if scalar < 0 or raydn_group < 0 or raydn_num < 1:
            raise ValueError(
                f"need scalar >= 0, raydn_group >= 0 and raydn_num >= 1, got scalar={scalar}, "
                f"raydn_group={raydn_group}, raydn_num={raydn_num}"
            )
        self.num_classes = num_classes
        self.scalar = scalar
        self.noise_scale = noise_scale
        self.noise_trans = noise_trans
        self.split = split
        self.raydn_group = raydn_group
        self.raydn_num = raydn_num
        self.radius = raydn_radius
        self.sampler = Beta(float(raydn_alpha), float(raydn_beta))

    @property
    def num_ray_copies(self) -> int:
        """Ray copies of every GT (``raydn_group * raydn_num``)."""
        return self.raydn_group * self.raydn_num

    def ray_noise(self, boxes: Tensor, labels: Tensor, batch_idx: Tensor, pc_range: Tensor,
                  lidar2img: Tensor, pad_shape: Sequence[int]) -> tuple[Tensor, Tensor]:
        """One ray group of ``T`` GT boxes ``(T, 9)``.

        Returns:
            Normalised centres ``(raydn_num * T, 3)`` and labels ``(raydn_num * T,)``, copy-major.
        """
        steps, positive = ray_steps(boxes.shape[0], self.raydn_num, self.sampler, self.radius,
                                    self.split, boxes.device)
        shift = steps * (boxes[:, L:H + 1].mean(dim=-1) / 2)
        centres = shift_along_camera_rays(
            boxes[:, X:Z + 1].repeat(self.raydn_num, 1), batch_idx.repeat(self.raydn_num),
            shift.reshape(-1), lidar2img.to(boxes.dtype), pad_shape)
        known_labels = torch.where(positive.reshape(-1), labels.repeat(self.raydn_num), self.num_classes)
        return normalise_centres(centres, pc_range), known_labels

    def __call__(self, gt_bboxes: Sequence[Tensor], gt_labels: Sequence[Tensor], pc_range: Tensor,
                 lidar2img: Tensor, pad_shape: Sequence[int]) -> DenoisingQueries | None:
        """Denoising queries of a batch, or None when it holds no GT box.

        Args:
            gt_bboxes: ``B`` tensors ``(M_b, 9)``; gt_labels: ``B`` tensors ``(M_b,)``.
            pc_range: ``(6,)``; lidar2img: ``(B, N, 4, 4)``; pad_shape: padded ``(H, W)``.

        Returns:
            Box groups first, then the ray groups; ``num_groups = scalar + raydn_group *
            raydn_num``.
        """
        device = pc_range.device
        counts = [int(b.shape[0]) for b in gt_bboxes]
        group_size = max(counts, default=0)
        if group_size == 0 or self.scalar + self.num_ray_copies == 0:
            return None
        boxes = torch.cat([b.reshape(-1, BOX_DIM) for b in gt_bboxes]).to(device).float()
        labels = torch.cat([lab.reshape(-1) for lab in gt_labels]).to(device).long()
        batch_idx = torch.cat([torch.full((m,), b, dtype=torch.long, device=device) for b, m in enumerate(counts)])
        slot = torch.cat([torch.arange(m, device=device) for m in counts])
        parts = []
        if self.scalar > 0:
            box_dn = build_dn_queries(gt_bboxes, gt_labels, pc_range, self.num_classes, self.scalar,
                                      self.noise_scale, self.noise_trans, self.split)
            centres = box_dn.reference_points[box_dn.batch_index, box_dn.query_index]
            parts.append((centres, box_dn.labels, box_dn.bboxes, box_dn.batch_index, box_dn.query_index))
        for group in range(self.raydn_group):
            centres, ray_labels = self.ray_noise(boxes, labels, batch_idx, pc_range, lidar2img, pad_shape)
            first = self.scalar + group * self.raydn_num
            query_index = torch.cat([slot + (first + copy) * group_size for copy in range(self.raydn_num)])
            parts.append((centres, ray_labels, boxes.repeat(self.raydn_num, 1),
                          batch_idx.repeat(self.raydn_num), query_index))
        centres, known_labels, known_boxes, batch_index, query_index = (torch.cat(p) for p in zip(*parts))
        num_groups = self.scalar + self.num_ray_copies
        reference_points = torch.zeros(len(counts), num_groups * group_size, 3, device=device)
        reference_points[batch_index, query_index] = centres
        return DenoisingQueries(
            reference_points=reference_points, labels=known_labels, bboxes=known_boxes,
            batch_index=batch_index, query_index=query_index, num_groups=num_groups,
            group_size=group_size)

    def attention_mask(self, dn: DenoisingQueries, num_query: int, num_propagated: int,
                       memory_len: int) -> Tensor:
        """Self-attention mask of ``dn`` (see :func:`dn_attention_mask`)."""
        return dn_attention_mask(dn.group_size, self.scalar, self.raydn_group, self.raydn_num,
                                 num_query, num_propagated, memory_len, dn.reference_points.device)
