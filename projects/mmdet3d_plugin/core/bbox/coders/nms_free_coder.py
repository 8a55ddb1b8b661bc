"""NMS-free decoding of query-head outputs into scored 3D boxes (StreamPETR ``NMSFreeCoder``)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..box_layout import X, Z
from ..util import denormalize_bbox
from ....registry import TASK_UTILS


@TASK_UTILS.register_module()
class NMSFreeCoder:
    """Keep the top-scoring (query, class) pairs of the last decoder layer.

    Every query may contribute several classes: the sigmoid scores of all ``Q * C`` pairs are
    ranked together and the best ``max_num`` kept, then boxes whose centre leaves
    ``post_center_range`` or whose score is below ``score_threshold`` are dropped.

    Args:
        pc_range: point-cloud range ``[x0, y0, z0, x1, y1, z1]`` (kept for the heads; box
            centres in the codes are already metric).
        post_center_range: ``[x0, y0, z0, x1, y1, z1]`` box centres must lie in
            (inclusive); None keeps all.
        max_num: number of (query, class) pairs kept before filtering.
        voxel_size: accepted for config compatibility; not used by decoding.
        score_threshold: minimum score kept; None (or 0) keeps all.
        num_classes: ``C``.
    """

    def __init__(
        self,
        pc_range: Sequence[float],
        post_center_range: Optional[Sequence[float]] = None,
        max_num: int = 300,
        voxel_size: Optional[Sequence[float]] = None,
        score_threshold: Optional[float] = None,
        num_classes: int = 10,
    ) -> None:
        if post_center_range is not None and len(post_center_range) != 6:
            raise ValueError(
                f"NMSFreeCoder: post_center_range needs 6 values [x0, y0, z0, x1, y1, z1], "
                f"got {list(post_center_range)}"
            )
        self.pc_range = list(pc_range)
        self.post_center_range = None if post_center_range is None else list(post_center_range)
        self.max_num = max_num
        self.voxel_size = voxel_size
        self.score_threshold = score_threshold
        self.num_classes = num_classes

    def decode_single(self, cls_scores: Tensor, bbox_preds: Tensor) -> dict[str, Tensor]:
        """Decode one sample.

        Args:
            cls_scores: ``(Q, C)`` class logits.
            bbox_preds: ``(Q, 10)`` box codes.

        Returns:
            ``{'bboxes': (K, 9), 'scores': (K,), 'labels': (K,) int64}`` sorted by score.
        """
        if cls_scores.shape[-1] != self.num_classes:
            raise ValueError(
                f"NMSFreeCoder: num_classes={self.num_classes} but the scores have "
                f"{cls_scores.shape[-1]} classes"
            )
        num_keep = min(self.max_num, cls_scores.numel())
        scores, indexes = cls_scores.sigmoid().flatten().topk(num_keep)
        labels = indexes % self.num_classes
        boxes = denormalize_bbox(bbox_preds[indexes // self.num_classes], self.pc_range)
        keep = torch.ones_like(scores, dtype=torch.bool)
        if self.score_threshold:
            keep &= scores >= self.score_threshold
        if self.post_center_range is not None:
            bounds = boxes.new_tensor(self.post_center_range)
            centres = boxes[:, X : Z + 1]
            keep &= (centres >= bounds[:3]).all(dim=1) & (centres <= bounds[3:]).all(dim=1)
        return {"bboxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}

    def decode(self, preds_dicts: dict[str, Tensor]) -> list[dict[str, Tensor]]:
        """Decode a batch from the last decoder layer.

        Args:
            preds_dicts: ``'all_cls_scores'`` ``(L, B, Q, C)`` logits and
                ``'all_bbox_preds'`` ``(L, B, Q, 10)`` box codes.

        Returns:
            B dicts as :meth:`decode_single`.
        """
        cls_scores = preds_dicts["all_cls_scores"][-1]
        bbox_preds = preds_dicts["all_bbox_preds"][-1]
        return [
            self.decode_single(cls_scores[b], bbox_preds[b]) for b in range(cls_scores.shape[0])
        ]
