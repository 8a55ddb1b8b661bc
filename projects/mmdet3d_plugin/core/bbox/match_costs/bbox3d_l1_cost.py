"""Plain L1 distance cost between code vectors (StreamPETR ``BBox3DL1Cost``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class BBox3DL1Cost:
    """``cost[q, g] = weight * sum_d |pred[q, d] - gt[g, d]|`` on vectors of any width.

    Used on 3D box codes and on normalised 2D centres.

    Args:
        weight: scale of the cost.
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, bbox_pred: Tensor, gt_bboxes: Tensor) -> Tensor:
        """``bbox_pred (num_query, D)``, ``gt_bboxes (num_gt, D)`` -> ``(num_query, num_gt)``."""
        return torch.cdist(bbox_pred, gt_bboxes, p=1) * self.weight
