"""Query denoising (DN-DETR style) for StreamPETR-like 3D query heads.

Every ground-truth box of a batch is copied into ``num_groups`` groups. Each copy becomes
one extra query whose reference point is the box centre shifted by uniform noise in
``[-1, 1]^3`` times ``(size / 2 + noise_trans) * noise_scale``; a copy whose unit noise
vector is longer than ``split`` must be classified as background. The copies sit in front
of the matching queries, padded per group to the largest GT count of the batch::

    [group 0 | group 1 | ... | group S-1 | matching queries | propagated queries]

:func:`dn_self_attention_mask` isolates the groups from each other and hides all of them
from the other queries (which would otherwise see the answers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ...core.bbox.box_layout import BOX_DIM, H, L, X, Z


@dataclass
class DenoisingQueries:
    """Denoising queries of one batch.

    Attributes:
        reference_points: ``(B, pad_size, 3)`` noisy centres normalised to the point-cloud
            range (zero for padding slots).
        labels: ``(S * M,)`` int64 target class of every copy (``num_classes`` =
            background), ``M`` the number of GT boxes in the whole batch.
        bboxes: ``(S * M, 9)`` target box of every copy (box layout).
        batch_index: ``(S * M,)`` sample of every copy.
        query_index: ``(S * M,)`` position of every copy among the ``pad_size`` DN queries.
        num_groups: ``S``.
        group_size: queries per group (largest GT count of a sample).
    """

    reference_points: Tensor
    labels: Tensor
    bboxes: Tensor
    batch_index: Tensor
    query_index: Tensor
    num_groups: int
    group_size: int

    @property
    def pad_size(self) -> int:
        """Number of DN queries per sample (``num_groups * group_size``)."""
        return self.num_groups * self.group_size

    @property
    def num_targets(self) -> int:
        """Number of supervised copies (``S * M``)."""
        return int(self.labels.numel())


def build_dn_queries(
    gt_bboxes_3d: Sequence[Tensor],
    gt_labels_3d: Sequence[Tensor],
    pc_range: Tensor,
    num_classes: int,
    num_groups: int,
    noise_scale: float,
    noise_trans: float = 0.0,
    split: float = 0.75,
) -> DenoisingQueries | None:
    """Build the noisy copies of the batch's GT boxes.

    Args:
        gt_bboxes_3d: B tensors ``(M_b, 9)`` in the box layout.
        gt_labels_3d: B tensors ``(M_b,)`` int64.
        pc_range: ``(6,)`` point-cloud range used to normalise the centres.
        num_classes: label given to copies with too much noise (background).
        num_groups: number of copies ``S`` of every box.
        noise_scale: scale of the centre noise relative to half the box size.
        noise_trans: constant added to the half size before scaling.
        split: unit-noise norm above which a copy is background.

    Returns:
        The DN queries, or None when the batch holds no GT box.
    """
    counts = [int(boxes.shape[0]) for boxes in gt_bboxes_3d]
    group_size = max(counts, default=0)
    if group_size == 0 or num_groups <= 0:
        return None
    device = pc_range.device
    boxes = torch.cat([b.reshape(-1, BOX_DIM) for b in gt_bboxes_3d]).to(device).float()
    labels = torch.cat([lab.reshape(-1) for lab in gt_labels_3d]).to(device).long()
    batch = torch.cat([torch.full((n,), i, dtype=torch.long, device=device) for i, n in enumerate(counts)])
    slot = torch.cat([torch.arange(n, device=device) for n in counts])
    boxes, labels = boxes.repeat(num_groups, 1), labels.repeat(num_groups)
    batch = batch.repeat(num_groups)
    group = torch.arange(num_groups, device=device).repeat_interleave(len(slot))
    query_index = slot.repeat(num_groups) + group * group_size

    unit_noise = torch.rand(boxes.shape[0], 3, device=device) * 2 - 1
    half_size = boxes[:, L:H + 1] / 2 + noise_trans
    centers = boxes[:, X:Z + 1] + unit_noise * half_size * noise_scale
    centers = ((centers - pc_range[:3]) / (pc_range[3:] - pc_range[:3])).clamp(0.0, 1.0)
    labels = torch.where(unit_noise.norm(dim=1) > split, torch.full_like(labels, num_classes), labels)

    reference_points = torch.zeros(len(counts), num_groups * group_size, 3, device=device)
    reference_points[batch, query_index] = centers
    return DenoisingQueries(
        reference_points=reference_points, labels=labels, bboxes=boxes, batch_index=batch,
        query_index=query_index, num_groups=num_groups, group_size=group_size,
    )


def dn_self_attention_mask(
    num_groups: int, group_size: int, num_queries: int, num_keys: int, device: torch.device
) -> Tensor:
    """Self-attention mask for ``[DN groups | queries]`` attending to ``[DN groups | keys]``.

    Args:
        num_groups, group_size: layout of the ``pad = num_groups * group_size`` DN queries.
        num_queries: non-DN queries (matching + propagated).
        num_keys: non-DN keys (the non-DN queries themselves + extra memory keys).
        device: device of the mask.

    Returns:
        ``(pad + num_queries, pad + num_keys)`` bool, True = blocked: a DN query sees its
        own group and every non-DN key; a non-DN query sees no DN query.
    """
    pad = num_groups * group_size
    mask = torch.zeros(pad + num_queries, pad + num_keys, dtype=torch.bool, device=device)
    group_of = torch.arange(pad, device=device) // group_size
    mask[:pad, :pad] = group_of[:, None] != group_of[None, :]
    mask[pad:, :pad] = True
    return mask
