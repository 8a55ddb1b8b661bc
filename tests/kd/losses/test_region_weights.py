"""DistillBEV region decomposition: heatmaps, labels and weights on constructed cases."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.util import normalize_bbox
from projects.mmdet3d_plugin.kd.losses.region_weights import (FN, FP, TN, TP, RegionWeights,
                                                              bev_cell_centers, decompose_regions,
                                                              region_weight_map, render_box_heatmap)

PC = [-10.0, -10.0, -1.0, 10.0, 10.0, 1.0]  # 20 x 20 cells of 1 m
BEV = (20, 20)


def _box(x: float, y: float, length: float = 1.0, width: float = 1.0, yaw: float = 0.0) -> torch.Tensor:
    return torch.tensor([x, y, 0.0, length, width, 1.5, yaw, 0.0, 0.0])


def _cell(x: float, y: float) -> tuple[int, int]:
    """(row, column) of the cell containing (x, y)."""
    return int(y - PC[1]), int(x - PC[0])


def test_cell_centres() -> None:
    centres = bev_cell_centers(PC, BEV)
    assert centres.shape == (20, 20, 2)
    torch.testing.assert_close(centres[3, 7], torch.tensor([-2.5, -6.5]))


def test_heatmap_peaks_at_the_box_and_follows_its_heading() -> None:
    heat = render_box_heatmap(torch.stack([_box(0.5, 0.5, 8.0, 2.0, yaw=math.pi / 2)]),
                              torch.tensor([0.8]), PC, BEV)
    assert heat[_cell(0.5, 0.5)] == pytest.approx(0.8)
    # Heading along +y: 3 m along y stays hot, 3 m along x is cold.
    assert heat[_cell(0.5, 3.5)] > 0.5 > 0.01 > heat[_cell(3.5, 0.5)]
    assert render_box_heatmap(torch.zeros(0, 9), torch.zeros(0), PC, BEV).abs().sum() == 0


def test_decompose_regions_on_constructed_maps() -> None:
    gt = torch.tensor([[[0.9, 0.9], [0.1, 0.1]]])
    teacher = torch.tensor([[[0.8, 0.1], [0.5, 0.2]]])
    labels = decompose_regions(gt, teacher, gt_thr=0.5, teacher_thr=0.3)
    assert labels.tolist() == [[[TP, FN], [FP, TN]]]
    weights = region_weight_map(labels, (1.0, 2.0, 3.0, 0.1), balance=False)
    torch.testing.assert_close(weights, torch.tensor([[[1.0, 2.0], [3.0, 0.1]]]))
    balanced = region_weight_map(torch.tensor([[[TP, TP], [FP, TN]]]), (1.0, 2.0, 3.0, 0.1), balance=True)
    torch.testing.assert_close(balanced, torch.tensor([[[0.5, 0.5], [3.0, 0.1]]]))


def test_region_weights_label_tp_fn_fp_and_tn_cells() -> None:
    gt = [torch.stack([_box(5.5, 0.5), _box(-4.5, -6.5)])]
    teacher_boxes = torch.stack([_box(5.5, 0.5), _box(-7.5, 6.5), _box(0.5, 8.5)])
    teacher_cls = torch.full((1, 3, 10), -10.0)
    teacher_cls[0, 0, 2] = 2.0   # confident on the first GT box: TP
    teacher_cls[0, 1, 4] = 1.0   # confident where there is no GT: FP (kept)
    teacher_cls[0, 2, 4] = -3.0  # unconfident: ignored
    regions = RegionWeights(PC, BEV, gt_thr=0.5, teacher_thr=0.3, fp_weight=2.0, tn_weight=0.1)
    labels = regions.labels(gt, teacher_cls, normalize_bbox(teacher_boxes)[None])
    assert labels[0][_cell(5.5, 0.5)] == TP
    assert labels[0][_cell(-4.5, -6.5)] == FN
    assert labels[0][_cell(-7.5, 6.5)] == FP
    assert labels[0][_cell(0.5, 8.5)] == TN
    # A 1 m GT box (one-cell sigma) covers its cell and the four neighbours (distance 1 m,
    # exp(-1/2) >= 0.5). The FP box (score 0.73) reaches as far: 0.73 exp(-1/2) >= 0.3. The
    # TP box (score 0.88) also reaches its diagonal cells (0.88 exp(-1) >= 0.3), where there
    # is no GT: 4 more FP cells.
    assert [(labels == r).sum().item() for r in (TP, FN, FP)] == [5, 5, 5 + 4]
    weights = regions(gt, teacher_cls, normalize_bbox(teacher_boxes)[None])
    assert weights[0][_cell(-7.5, 6.5)] == pytest.approx(2.0)
    assert weights[0][_cell(0.5, 8.5)] == pytest.approx(0.1)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="non-negative region weights"):
        RegionWeights(PC, BEV, tn_weight=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        decompose_regions(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3), 0.5, 0.5)
    with pytest.raises(ValueError, match="agree in batch size"):
        RegionWeights(PC, BEV).labels([torch.zeros(0, 9)] * 2, torch.zeros(1, 3, 10), torch.zeros(1, 3, 10))
