"""The targets of the denoising (DN) queries of the StreamPETR / RayDN heads.

DN queries are built from each sample's ground truth; in distillation the teacher's pseudo
targets are appended to it (the set losses still see the GT only).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor


def dn_ground_truth(gt_bboxes_3d: Optional[Sequence[Tensor]], gt_labels_3d: Optional[Sequence[Tensor]],
                    pseudo_bboxes_3d: Optional[Sequence[Tensor]], pseudo_labels_3d: Optional[Sequence[Tensor]]
                    ) -> tuple[Optional[list], Optional[list]]:
    """The targets of the DN queries: each sample's GT ``(M_b, 9)`` / ``(M_b,)`` followed by
    its teacher pseudo targets ``(k_b, 9)`` / ``(k_b,)`` when those are given."""
    if pseudo_bboxes_3d is None and pseudo_labels_3d is None:
        return gt_bboxes_3d, gt_labels_3d
    if pseudo_bboxes_3d is None or pseudo_labels_3d is None or gt_bboxes_3d is None or gt_labels_3d is None \
            or not len(gt_bboxes_3d) == len(pseudo_bboxes_3d) == len(pseudo_labels_3d) == len(gt_labels_3d):
        raise ValueError("pseudo_bboxes_3d and pseudo_labels_3d must come together, with the GT, one "
                         "entry per sample")
    boxes = [torch.cat([gt, pseudo.to(gt)]) for gt, pseudo in zip(gt_bboxes_3d, pseudo_bboxes_3d)]
    labels = [torch.cat([gt.long(), pseudo.to(gt.device).long()])
              for gt, pseudo in zip(gt_labels_3d, pseudo_labels_3d)]
    return boxes, labels


def dn_targets(gt_bboxes_3d: Optional[Sequence[Tensor]], gt_labels_3d: Optional[Sequence[Tensor]],
               pseudo_bboxes_3d: Optional[Sequence[Tensor]], pseudo_labels_3d: Optional[Sequence[Tensor]],
               enabled: bool, owner: str) -> Optional[tuple[list, list]]:
    """The per-sample targets ``(M_b, 9)`` / ``(M_b,)`` of a frame's DN queries (GT, then
    teacher pseudo targets), or None where no DN query is made (``enabled`` False, e.g. in
    eval or with ``with_dn=False``, or no GT); ``owner`` names the head in errors."""
    boxes, labels = dn_ground_truth(gt_bboxes_3d, gt_labels_3d, pseudo_bboxes_3d, pseudo_labels_3d)
    if not enabled or boxes is None:
        return None
    if labels is None:
        raise ValueError(f"{owner}: gt_bboxes_3d given without gt_labels_3d")
    return list(boxes), list(labels)
