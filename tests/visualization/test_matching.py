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
