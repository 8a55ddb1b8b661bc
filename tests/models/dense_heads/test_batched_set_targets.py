"""The batched target building of the 3D query heads equals the per-layer, per-sample path.

The reference below is the former loop: one ``HungarianAssigner3D.assign`` per (layer,
sample), labels and positives from its :class:`AssignResult`. The batched path
(``assign_set_targets`` over ``(L, B, Q, ...)``) must give the same assignments, targets and
losses bit for bit, and cross the device boundary once each way.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.assigners import hungarian_matching
from projects.mmdet3d_plugin.core.bbox.assigners.hungarian_matching import assign_results
from projects.mmdet3d_plugin.models.dense_heads.set_losses import (SetTargets, assign_set_targets,
                                                                   build_set_losses, set_prediction_losses)
from projects.mmdet3d_plugin.registry import TASK_UTILS

PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
NUM_CLASSES = 10
CODE_WEIGHTS = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2])


def _assigner() -> object:
    return TASK_UTILS.build(dict(
        type="HungarianAssigner3D", cls_cost=dict(type="FocalLossCost", weight=2.0),
        reg_cost=dict(type="BBox3DL1Cost", weight=0.25), iou_cost=dict(type="IoUCost", weight=0.0),
        pc_range=PC_RANGE))


def _boxes(num: int, gen: torch.Generator) -> torch.Tensor:
    """``(num, 9)`` random boxes (positive sizes)."""
    boxes = torch.randn(num, 9, generator=gen) * 10
    boxes[:, 3:6] = torch.rand(num, 3, generator=gen) * 4 + 0.1
    return boxes


def _inputs(seed: int, gt_counts: list[int], num_query: int = 12, num_layers: int = 3,
            non_finite: bool = False) -> tuple:
    """``(L, B, Q, C)`` logits, ``(L, B, Q, 10)`` codes as a non-contiguous view (as the head
    slices off its DN queries), and B GT sets."""
    gen = torch.Generator().manual_seed(seed)
    batch, pad = len(gt_counts), 3
    cls = torch.randn(num_layers, batch, pad + num_query, NUM_CLASSES, generator=gen)[:, :, pad:]
    box = (torch.randn(num_layers, batch, pad + num_query, 10, generator=gen) * 10)[:, :, pad:]
    if non_finite:
        cls[0, 0, 1, :] = float("nan")
        box[1, 0, 2, 0] = float("inf")
        box[-1, -1, 0, 1] = float("-inf")
    boxes = [_boxes(m, gen) for m in gt_counts]
    labels = [torch.randint(0, NUM_CLASSES, (m,), generator=gen) for m in gt_counts]
    return cls, box, boxes, labels


def _reference_targets(assigner, cls_scores, bbox_preds, gt_bboxes, gt_labels, match_costs,
                       with_velo) -> SetTargets:
    """The former per-sample loop over ``assign`` for one layer ``(B, Q, ...)``."""
    batch, num_query = cls_scores.shape[:2]
    labels, pos_index, pos_boxes = [], [], []
    for b in range(batch):
        gt_boxes, gt_lab = gt_bboxes[b].to(bbox_preds), gt_labels[b].long()
        result = assigner.assign(bbox_preds[b].detach(), cls_scores[b].detach(), gt_boxes, gt_lab,
                                 code_weights=match_costs, with_velo=with_velo)
        sample_labels = torch.full((num_query,), NUM_CLASSES, dtype=torch.long)
        sample_labels[result.pos_inds] = gt_lab[result.pos_assigned_gt_inds]
        labels.append(sample_labels)
        pos_index.append(result.pos_inds + b * num_query)
        pos_boxes.append(gt_boxes[result.pos_assigned_gt_inds])
    pos = torch.cat(pos_index)
    return SetTargets(torch.cat(labels), pos, torch.cat(pos_boxes), pos.numel(), batch * num_query - pos.numel())


CASES = [
    dict(gt_counts=[5, 7], with_velo=True, match_costs=CODE_WEIGHTS),
    dict(gt_counts=[0, 4], with_velo=False, match_costs=CODE_WEIGHTS),
    dict(gt_counts=[20, 3], with_velo=True, match_costs=None),
    dict(gt_counts=[0, 0], with_velo=True, match_costs=CODE_WEIGHTS),
    dict(gt_counts=[6, 15, 1], with_velo=False, match_costs=None, non_finite=True),
]


@pytest.mark.parametrize("case", CASES)
def test_batched_targets_and_losses_equal_the_per_layer_path(case: dict) -> None:
    assigner = _assigner()
    cls, box, boxes, labels = _inputs(7, case["gt_counts"], non_finite=case.get("non_finite", False))
    batched = assign_set_targets(assigner, cls, box, boxes, labels, NUM_CLASSES, case["match_costs"],
                                 case["with_velo"])
    loss_cls, loss_bbox, _ = build_set_losses("test", None, None, None, None)
    for layer, targets in enumerate(batched):
        reference = _reference_targets(assigner, cls[layer], box[layer], boxes, labels, case["match_costs"],
                                       case["with_velo"])
        assert torch.equal(targets.labels, reference.labels)
        assert torch.equal(targets.pos_index, reference.pos_index)
        assert torch.equal(targets.pos_gt_bboxes, reference.pos_gt_bboxes)
        assert (targets.num_pos, targets.num_neg) == (reference.num_pos, reference.num_neg)
        got = set_prediction_losses(cls[layer], box[layer], targets, loss_cls, loss_bbox, CODE_WEIGHTS, False)
        want = set_prediction_losses(cls[layer], box[layer], reference, loss_cls, loss_bbox, CODE_WEIGHTS, False)
        for a, b in zip(got, want):
            assert torch.equal(a, b)


@pytest.mark.parametrize("case", CASES)
def test_assign_layers_gives_the_assign_results_of_assign(case: dict) -> None:
    assigner = _assigner()
    cls, box, boxes, labels = _inputs(3, case["gt_counts"], non_finite=case.get("non_finite", False))
    matchings = assigner.assign_layers(box, cls, boxes, labels, case["match_costs"], case["with_velo"])
    for layer, layer_matchings in enumerate(matchings):
        results = assign_results(layer_matchings, labels)
        for b, result in enumerate(results):
            want = assigner.assign(box[layer, b], cls[layer, b], boxes[b], labels[b],
                                   code_weights=case["match_costs"], with_velo=case["with_velo"])
            assert result.num_gts == want.num_gts
            assert torch.equal(result.gt_inds, want.gt_inds) and torch.equal(result.labels, want.labels)
            assert layer_matchings[b].rows.size == min(box.shape[2], boxes[b].shape[0])


def test_one_transfer_each_way_per_loss_call(monkeypatch) -> None:
    """All costs reach the host in one ``Tensor.cpu``; all indices return in one copy."""
    counts = {"cpu": 0, "to_device": 0}
    real_cpu, real_to_device = torch.Tensor.cpu, hungarian_matching.indices_to_device

    def counting_cpu(self, *args, **kwargs):
        counts["cpu"] += 1
        return real_cpu(self, *args, **kwargs)

    def counting_to_device(arrays, device):
        counts["to_device"] += 1
        return real_to_device(arrays, device)

    numpy_calls = []
    real_numpy = torch.Tensor.numpy
    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    monkeypatch.setattr(torch.Tensor, "numpy", lambda self, *a, **k: numpy_calls.append(1) or real_numpy(self, *a, **k))
    from projects.mmdet3d_plugin.models.dense_heads import set_losses
    monkeypatch.setattr(set_losses, "indices_to_device", counting_to_device)
    cls, box, boxes, labels = _inputs(5, [4, 9, 0], num_layers=6)
    targets = assign_set_targets(_assigner(), cls, box, boxes, labels, NUM_CLASSES, CODE_WEIGHTS, True)
    assert len(targets) == 6
    assert counts == {"cpu": 1, "to_device": 1} and len(numpy_calls) == 1
    assert all(isinstance(t.num_pos, int) for t in targets)


def test_indices_to_device_splits_in_order() -> None:
    arrays = [np.array([3, 1]), np.empty(0, dtype=np.int64), np.array([7])]
    out = hungarian_matching.indices_to_device(arrays, "cpu")
    assert [t.tolist() for t in out] == [[3, 1], [], [7]] and all(t.dtype == torch.long for t in out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_avg_factor_equals_the_device_round_trip_it_replaces(dtype, monkeypatch) -> None:
    """``max(float(reduce_mean(new_tensor([v]))), 1)`` as the losses computed it, without the
    device when not distributed; with a group, through ``reduce_mean`` (faked here)."""
    from projects.mmdet3d_plugin.models.dense_heads import set_losses

    like = torch.zeros(2, dtype=dtype)
    for value in (0.0, 0.3, 1.0, 7.0, 123.0 * np.pi / 6 * 0.5 ** 3, 2.0 ** 25 + 1, 1e-8):
        want = max(float(torch.clamp(like.new_tensor([value]), min=1)), 1.0)
        assert set_losses.avg_factor(value, like, True) == want
        assert set_losses.avg_factor(value, like, False) == want
    monkeypatch.setattr(set_losses.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(set_losses, "reduce_mean", lambda v: (v + 5.0) / 2)
    assert set_losses.avg_factor(3.0, like, True) == 4.0
    assert set_losses.avg_factor(3.0, like, False) == 3.0
