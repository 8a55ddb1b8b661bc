"""DistillBEV region decomposition of a BEV grid into true/false positives and negatives.

Two heatmaps are rendered on the same BEV grid as the query field (``bev_size = (H, W)``
cells over the ``x`` / ``y`` extent of ``pc_range``; row ``i`` along ``y``, column ``j``
along ``x``; cell centres at ``x_min + (j + 0.5) * cell_x``):

* the **GT heatmap** from ``gt_bboxes_3d``, and
* the **teacher confidence map** from the teacher's predicted boxes and scores,

both with the same box kernel: a box ``(x, y, l, w, yaw)`` with score ``s`` contributes

    s * exp(-((u / sigma_l)^2 + (v / sigma_w)^2) / 2),   sigma_l = max(l / 2, cell),
                                                         sigma_w = max(w / 2, cell)

at a cell whose centre is ``(u, v)`` in the box frame (``u`` along the heading), ``cell``
the smaller cell side (so a pedestrian still covers its cell). A map is the maximum over
boxes. With the default thresholds of 0.5 a GT box covers the ellipse inscribed in (and
slightly beyond) its footprint.

Each cell is then labelled (``gt >= gt_thr``, ``teacher >= teacher_thr``):

* **TP** (0): both; **FN** (1): GT only; **FP** (2): teacher only — kept, DistillBEV
  observes that the teacher's false positives still carry useful geometry;
* **TN** (3): neither (easy background).

and weighted by a per-region factor (optionally divided by the region's cell count, as
FGD's ``1 / area``, so that every present region weighs the same in total).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ...core.bbox.box_layout import BOX_DIM, L, W, X, Y, YAW
from ...core.bbox.util import denormalize_bbox
from ...registry import TASK_UTILS

TP, FN, FP, TN = 0, 1, 2, 3
REGION_NAMES = ("tp", "fn", "fp", "tn")


def bev_cell_centers(pc_range: Sequence[float], bev_size: Sequence[int],
                     device: Optional[torch.device] = None) -> Tensor:
    """Metric ``(x, y)`` of every cell centre, ``(H, W, 2)``."""
    height, width = int(bev_size[0]), int(bev_size[1])
    x_min, y_min, x_max, y_max = pc_range[0], pc_range[1], pc_range[3], pc_range[4]
    xs = x_min + (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (x_max - x_min) / width
    ys = y_min + (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (y_max - y_min) / height
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)


def render_box_heatmap(boxes: Tensor, scores: Tensor, pc_range: Sequence[float],
                       bev_size: Sequence[int]) -> Tensor:
    """Maximum over boxes of ``score * kernel`` (see the module docstring).

    Args:
        boxes: ``(M, 9)`` box layout (``(M, 7)`` also accepted), LiDAR frame.
        scores: ``(M,)`` peak value of each box's kernel.
        pc_range: ``(6,)`` range whose ``x`` / ``y`` extent the grid covers.
        bev_size: ``(H, W)``.

    Returns:
        ``(H, W)`` float32 heatmap, zero where no box reaches.
    """
    if boxes.dim() != 2 or boxes.shape[-1] not in (BOX_DIM, YAW + 1) or scores.shape != boxes.shape[:1]:
        raise ValueError(f"render_box_heatmap expects boxes (M, 9) and scores (M,), got "
                         f"{tuple(boxes.shape)} and {tuple(scores.shape)}")
    centers = bev_cell_centers(pc_range, bev_size, boxes.device)
    if boxes.shape[0] == 0:
        return centers.new_zeros(centers.shape[:2])
    cell = min((pc_range[3] - pc_range[0]) / bev_size[1], (pc_range[4] - pc_range[1]) / bev_size[0])
    boxes = boxes.float()
    offset = centers[None] - boxes[:, None, None, X:Y + 1]
    cos, sin = boxes[:, YAW].cos()[:, None, None], boxes[:, YAW].sin()[:, None, None]
    along = offset[..., 0] * cos + offset[..., 1] * sin
    across = -offset[..., 0] * sin + offset[..., 1] * cos
    sigma_l = (boxes[:, L] / 2).clamp(min=cell)[:, None, None]
    sigma_w = (boxes[:, W] / 2).clamp(min=cell)[:, None, None]
    kernel = torch.exp(-0.5 * ((along / sigma_l) ** 2 + (across / sigma_w) ** 2))
    return (kernel * scores.float()[:, None, None]).amax(dim=0)


def decompose_regions(gt_heatmap: Tensor, teacher_heatmap: Tensor, gt_thr: float,
                      teacher_thr: float) -> Tensor:
    """Region label of every cell, ``(B, H, W)`` int64 in ``{TP, FN, FP, TN}``.

    Args:
        gt_heatmap: ``(B, H, W)``; teacher_heatmap: ``(B, H, W)``.
        gt_thr / teacher_thr: a cell is GT-positive / teacher-positive at or above them.
    """
    if gt_heatmap.shape != teacher_heatmap.shape:
        raise ValueError(f"gt_heatmap {tuple(gt_heatmap.shape)} and teacher_heatmap "
                         f"{tuple(teacher_heatmap.shape)} must have the same shape")
    gt_pos, teacher_pos = gt_heatmap >= gt_thr, teacher_heatmap >= teacher_thr
    labels = torch.full(gt_heatmap.shape, TN, dtype=torch.long, device=gt_heatmap.device)
    labels[gt_pos & teacher_pos] = TP
    labels[gt_pos & ~teacher_pos] = FN
    labels[~gt_pos & teacher_pos] = FP
    return labels


def region_weight_map(labels: Tensor, region_weights: Sequence[float], balance: bool) -> Tensor:
    """Per-cell weights ``(B, H, W)`` from region labels ``(B, H, W)``.

    Args:
        labels: output of :func:`decompose_regions`.
        region_weights: factors of ``(TP, FN, FP, TN)``.
        balance: divide each region's factor by its cell count in the sample.
    """
    factors = labels.new_tensor(region_weights, dtype=torch.float32)
    weights = factors[labels]
    if balance:
        counts = torch.stack([(labels == r).flatten(1).sum(dim=1) for r in range(len(REGION_NAMES))], 1)
        weights = weights / counts.gather(1, labels.flatten(1)).view_as(labels).clamp(min=1)
    return weights


@TASK_UTILS.register_module()
class RegionWeights:
    """BEV cell weights from the DistillBEV region decomposition.

    Args:
        pc_range: ``(6,)`` point-cloud range; the grid covers its ``x`` / ``y`` extent.
        bev_size: ``(H, W)`` cells.
        gt_thr: GT heatmap threshold of a foreground cell.
        teacher_thr: teacher confidence threshold of a detected cell.
        tp_weight, fn_weight, fp_weight, tn_weight: factor of each region.
        balance: divide each factor by its region's cell count (FGD-style ``1 / area``).
    """

    def __init__(self, pc_range: Sequence[float], bev_size: Sequence[int] = (128, 128),
                 gt_thr: float = 0.5, teacher_thr: float = 0.3, tp_weight: float = 1.0,
                 fn_weight: float = 1.0, fp_weight: float = 1.0, tn_weight: float = 0.1,
                 balance: bool = False) -> None:
        weights = (tp_weight, fn_weight, fp_weight, tn_weight)
        if len(pc_range) != 6 or len(bev_size) != 2 or min(weights) < 0 or max(weights) == 0:
            raise ValueError(f"RegionWeights needs pc_range of 6 values, bev_size (H, W) and "
                             f"non-negative region weights not all zero; got pc_range={pc_range}, "
                             f"bev_size={bev_size}, weights={weights}")
        self.pc_range = [float(v) for v in pc_range]
        self.bev_size = (int(bev_size[0]), int(bev_size[1]))
        self.gt_thr = float(gt_thr)
        self.teacher_thr = float(teacher_thr)
        self.region_weights = tuple(float(w) for w in weights)
        self.balance = balance

    @torch.no_grad()
    def labels(self, gt_bboxes_3d: Sequence[Tensor], teacher_cls: Tensor, teacher_box: Tensor) -> Tensor:
        """Region labels ``(B, H, W)``.

        Args:
            gt_bboxes_3d: B tensors ``(M_b, 9)``.
            teacher_cls: ``(B, Q, C)`` logits; teacher_box: ``(B, Q, 10)`` box codes.
        """
        if len(gt_bboxes_3d) != teacher_cls.shape[0] or teacher_box.shape[:2] != teacher_cls.shape[:2]:
            raise ValueError(f"RegionWeights: {len(gt_bboxes_3d)} GT samples, teacher_cls "
                             f"{tuple(teacher_cls.shape)} and teacher_box {tuple(teacher_box.shape)} "
                             "must agree in batch size (and queries)")
        scores = teacher_cls.float().sigmoid().amax(dim=-1)
        boxes = denormalize_bbox(teacher_box.float())
        gt_maps, teacher_maps = [], []
        for sample, gt in enumerate(gt_bboxes_3d):
            gt = gt.to(teacher_box.device).float()
            gt_maps.append(render_box_heatmap(gt, torch.ones_like(gt[:, 0]), self.pc_range, self.bev_size))
            confident = scores[sample] >= self.teacher_thr
            teacher_maps.append(render_box_heatmap(boxes[sample][confident], scores[sample][confident],
                                                   self.pc_range, self.bev_size))
        return decompose_regions(torch.stack(gt_maps), torch.stack(teacher_maps), self.gt_thr,
                                 self.teacher_thr)

    def __call__(self, gt_bboxes_3d: Sequence[Tensor], teacher_cls: Tensor, teacher_box: Tensor) -> Tensor:
        """Cell weights ``(B, H, W)`` (arguments as in :meth:`labels`)."""
        return region_weight_map(self.labels(gt_bboxes_3d, teacher_cls, teacher_box),
                                 self.region_weights, self.balance)
