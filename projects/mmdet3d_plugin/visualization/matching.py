"""Which predictions are right: greedy centre-distance matching as in the nuScenes metric.

Predictions, best score first, take the closest unmatched ground-truth box of the same class
whose BEV centre lies within ``distance_m`` (nuScenes uses 0.5, 1, 2 and 4 m; 2 m is the
middle threshold). :func:`classify_boxes` names the outcome: each prediction is a true
positive (matched) or a false positive, each ground-truth box matched or missed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The middle nuScenes matching threshold (BEV centre distance, metres).
MATCH_DISTANCE_M = 2.0


@dataclass(frozen=True)
class MatchResult:
    """Which boxes are right.

    Attributes:
        pred_match: ``(K,)`` int, the matched ground-truth index of each prediction or -1.
        gt_matched: ``(M,)`` bool, whether a prediction matched each ground-truth box.
    """

    pred_match: np.ndarray
    gt_matched: np.ndarray

    @property
    def true_positive(self) -> np.ndarray:
        """``(K,)`` bool: the prediction matched a ground-truth box."""
        return self.pred_match >= 0

    @property
    def false_positive(self) -> np.ndarray:
        """``(K,)`` bool: no ground-truth box of its class within the distance."""
        return self.pred_match < 0

    @property
    def missed(self) -> np.ndarray:
        """``(M,)`` bool: no prediction matched the ground-truth box."""
        return ~self.gt_matched


def match_predictions(pred_boxes: np.ndarray, pred_labels: np.ndarray, pred_scores: np.ndarray,
                      gt_boxes: np.ndarray, gt_labels: np.ndarray, distance_m: float = 2.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching by score.

    Args:
        pred_boxes: ``(K, >=2)``; pred_labels, pred_scores: ``(K,)``.
        gt_boxes: ``(M, >=2)``; gt_labels: ``(M,)``.
        distance_m: largest BEV centre distance of a match.

    Returns:
        ``pred_match (K,)`` int, the matched GT index or -1, and ``gt_matched (M,)`` bool.
    """
    pred_match = np.full(len(pred_boxes), -1, dtype=np.int64)
    gt_matched = np.zeros(len(gt_boxes), dtype=bool)
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return pred_match, gt_matched
    distance = np.linalg.norm(np.asarray(pred_boxes)[:, None, :2] - np.asarray(gt_boxes)[None, :, :2], axis=-1)
    for k in np.argsort(-np.asarray(pred_scores), kind="stable"):
        candidates = (~gt_matched) & (np.asarray(gt_labels) == pred_labels[k]) & (distance[k] <= distance_m)
        if candidates.any():
            best = int(np.argmin(np.where(candidates, distance[k], np.inf)))
            pred_match[k] = best
            gt_matched[best] = True
    return pred_match, gt_matched


def classify_boxes(pred_boxes: np.ndarray, pred_labels: np.ndarray, pred_scores: np.ndarray,
                   gt_boxes: np.ndarray, gt_labels: np.ndarray, distance_m: float = MATCH_DISTANCE_M
                   ) -> MatchResult:
    """:func:`match_predictions` as true positives, false positives and missed ground truth.

    Args: as :func:`match_predictions` (boxes ``(K, >=2)`` / ``(M, >=2)``, LiDAR frame).
    """
    return MatchResult(*match_predictions(np.asarray(pred_boxes), np.asarray(pred_labels),
                                          np.asarray(pred_scores), np.asarray(gt_boxes),
                                          np.asarray(gt_labels), distance_m))
