"""Greedy centre-distance matching of predictions to ground truth."""
from __future__ import annotations

import numpy as np

from projects.mmdet3d_plugin.visualization.matching import match_predictions


def test_best_score_matches_first_and_class_must_agree():
    gt = np.array([[10.0, 0.0], [20.0, 0.0]])
    gt_labels = np.array([0, 1])
    preds = np.array([[10.5, 0.0], [10.2, 0.0], [20.0, 0.5], [40.0, 0.0]])
    labels = np.array([0, 0, 0, 1])
    scores = np.array([0.5, 0.9, 0.8, 0.7])
    pred_match, gt_matched = match_predictions(preds, labels, scores, gt, gt_labels, 2.0)
    assert pred_match.tolist() == [-1, 0, -1, -1]  # pred 2 has the wrong class, pred 3 is too far
    assert gt_matched.tolist() == [True, False]


def test_empty_inputs():
    pred_match, gt_matched = match_predictions(np.zeros((0, 9)), np.zeros(0), np.zeros(0),
                                               np.zeros((2, 9)), np.array([0, 1]))
    assert pred_match.shape == (0,) and not gt_matched.any()


def _box(x: float, y: float) -> list[float]:
    return [x, y, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0]


def test_true_positives_false_positives_and_missed_ground_truth():
    """Hand-made boxes: one of each outcome the pictures draw, nuScenes 2 m rule, class-aware."""
    from projects.mmdet3d_plugin.visualization.matching import MATCH_DISTANCE_M, classify_boxes

    gt = np.array([_box(10, 0), _box(20, 5), _box(30, -5), _box(-15, 0)])
    gt_labels = np.array([0, 0, 8, 1])
    preds = np.array([_box(10.8, 0.9),   # car 1.2 m from GT 0: true positive
                      _box(10.2, 0.0),   # a second car on GT 0, lower score: false positive (duplicate)
                      _box(21.5, 6.5),   # car 2.1 m from GT 1: false positive (too far)
                      _box(30.0, -5.0),  # car on the pedestrian GT 2: false positive (wrong class)
                      _box(-15.5, 0.0)])  # truck on GT 3: true positive
    labels = np.array([0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.5, 0.8, 0.7, 0.6])
    result = classify_boxes(preds, labels, scores, gt, gt_labels)
    assert MATCH_DISTANCE_M == 2.0
    assert result.true_positive.tolist() == [True, False, False, False, True]
    assert result.false_positive.tolist() == [False, True, True, True, False]
    assert result.pred_match.tolist() == [0, -1, -1, -1, 3]
    assert result.missed.tolist() == [False, True, True, False]
