"""Teacher predictions turned into extra denoising targets for the student.

HarmoDistill appends the teacher's confident detections to the ground truth from which the
student's **denoising (DN) queries** are built, so the student also learns to refine noisy
copies of what the teacher sees. The set-prediction (Hungarian) loss keeps the real GT only.

The distiller runs the teacher in ``mode='predict'`` (B dicts ``boxes_3d (K, 9)``,
``scores_3d (K,)``, ``labels_3d (K,)``), calls :class:`PseudoLabeler` and puts the result in
the student's batch as ``pseudo_bboxes_3d`` / ``pseudo_labels_3d`` (lists of B tensors). The
heads (``StreamPETRHead``, ``RayDNHead``) then append them to the GT of their DN queries —
and to those queries' targets — only; without these keys nothing changes.

A teacher detection of an annotated object duplicates that GT box in the DN groups (as
upstream); it is a second noisy copy of the same target, not a conflicting one.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import Tensor

from ...core.bbox.box_layout import BOX_DIM, H, L
from ...registry import TASK_UTILS


def select_pseudo_labels(boxes_3d: Tensor, scores_3d: Tensor, labels_3d: Tensor, score_thr: float,
                         max_num: int) -> tuple[Tensor, Tensor]:
    """The teacher's confident, valid boxes of one sample, most confident first.

    Args:
        boxes_3d: ``(K, 9)`` box layout, LiDAR frame.
        scores_3d: ``(K,)``; labels_3d: ``(K,)``.
        score_thr: keep boxes scoring at least this.
        max_num: keep at most this many.

    Returns:
        ``boxes (k, 9)`` float32 and ``labels (k,)`` int64, detached, ``k <= max_num``; boxes
        with a non-finite value or a non-positive size are dropped.
    """
    if boxes_3d.dim() != 2 or boxes_3d.shape[-1] != BOX_DIM or scores_3d.shape != boxes_3d.shape[:1] \
            or labels_3d.shape != boxes_3d.shape[:1]:
        raise ValueError(f"select_pseudo_labels expects boxes_3d (K, {BOX_DIM}), scores_3d (K,) and "
                         f"labels_3d (K,), got {tuple(boxes_3d.shape)}, {tuple(scores_3d.shape)}, "
                         f"{tuple(labels_3d.shape)}")
    boxes, scores = boxes_3d.detach().float(), scores_3d.detach().float()
    valid = (scores >= score_thr) & torch.isfinite(boxes).all(dim=-1) & (boxes[:, L:H + 1] > 0).all(dim=-1)
    index = valid.nonzero().squeeze(1)
    index = index[scores[index].argsort(descending=True)][:max_num]
    return boxes[index], labels_3d.detach()[index].long()


@TASK_UTILS.register_module()
class PseudoLabeler:
    """Selects pseudo DN targets from the teacher's decoded predictions.

    Args:
        score_thr: minimum teacher score of a pseudo box.
        max_num: most pseudo boxes per sample.
    """

    def __init__(self, score_thr: float = 0.3, max_num: int = 50) -> None:
        if not 0.0 <= score_thr <= 1.0 or max_num < 0:
            raise ValueError(f"PseudoLabeler needs 0 <= score_thr <= 1 and max_num >= 0, got "
                             f"score_thr={score_thr}, max_num={max_num}")
        self.score_thr = float(score_thr)
        self.max_num = int(max_num)

    def __call__(self, predictions: Sequence[Mapping[str, Tensor]]) -> tuple[list[Tensor], list[Tensor]]:
        """``pseudo_bboxes_3d`` and ``pseudo_labels_3d``: lists of B ``(k_b, 9)`` / ``(k_b,)``.

        Args:
            predictions: B dicts with ``boxes_3d (K, 9)``, ``scores_3d (K,)``, ``labels_3d (K,)``.
        """
        boxes, labels = [], []
        for sample, pred in enumerate(predictions):
            missing = {"boxes_3d", "scores_3d", "labels_3d"} - set(pred)
            if missing:
                raise KeyError(f"PseudoLabeler: prediction {sample} lacks {sorted(missing)}")
            sample_boxes, sample_labels = select_pseudo_labels(
                pred["boxes_3d"], pred["scores_3d"], pred["labels_3d"], self.score_thr, self.max_num)
            boxes.append(sample_boxes)
            labels.append(sample_labels)
        return boxes, labels


def build_pseudo_labeler(cfg: Optional[Mapping[str, Any]]) -> Optional[PseudoLabeler]:
    """A :class:`PseudoLabeler` from a distiller's ``pseudo_label_cfg`` (None: no pseudo labels).

    Raises:
        KeyError: a key that is not an argument of :class:`PseudoLabeler` (with close matches).
    """
    if cfg is None:
        return None
    accepted = [name for name in inspect.signature(PseudoLabeler).parameters]
    unknown = {key: difflib.get_close_matches(key, accepted, n=1) for key in cfg if key not in accepted}
    if unknown:
        raise KeyError(f"pseudo_label_cfg: unknown keys {sorted(unknown)} (close matches: {unknown}); "
                       f"it takes {accepted}")
    return PseudoLabeler(**dict(cfg))
