"""FocalHead's batched 2D matching equals the former per-image ``HungarianAssigner2D.assign``
loop: same positives, GT indices, labels and losses bit for bit, one copy each way."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.assigners import hungarian_matching
from projects.mmdet3d_plugin.models.dense_heads import focal_head
from projects.mmdet3d_plugin.registry import MODELS

DIMS, IMAGES, TOKENS, CLASSES, PAD = 32, 5, 44, 10, (64, 176)


def _head():
    return MODELS.build(dict(type='FocalHead', num_classes=CLASSES, in_channels=DIMS, train_cfg=dict(
        assigner2d=dict(type='HungarianAssigner2D', cls_cost=dict(type='FocalLossCost', weight=2.),
                        reg_cost=dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                        iou_cost=dict(type='IoUCost', iou_mode='giou', weight=2.0),
                        centers2d_cost=dict(type='BBox3DL1Cost', weight=10.0)))))


def _case(seed: int, counts: list[int], non_finite: bool) -> tuple:
    """Predictions of ``IMAGES`` images and their per-image GT (pixel boxes)."""
    gen = torch.Generator().manual_seed(seed)
    preds = {'enc_cls_scores': torch.randn(IMAGES, TOKENS, CLASSES, generator=gen),
             'enc_bbox_preds': torch.rand(IMAGES, TOKENS, 4, generator=gen) * 0.5 + 0.1,
             'pred_centers2d': torch.rand(IMAGES, TOKENS, 2, generator=gen)}
    if non_finite:
        preds['enc_cls_scores'][0, 3] = float('nan')
        preds['enc_bbox_preds'][1, 2, 0] = float('inf')
    boxes, labels, centers = [], [], []
    for m in counts:
        xy = torch.rand(m, 2, generator=gen) * torch.tensor([PAD[1] - 20.0, PAD[0] - 20.0])
        wh = torch.rand(m, 2, generator=gen) * 15 + 2
        boxes.append(torch.cat([xy, xy + wh], 1))
        labels.append(torch.randint(0, CLASSES, (m,), generator=gen))
        centers.append(xy + wh / 2)
    return preds, boxes, labels, centers


def _reference(head, preds, boxes, labels, centers):
    """The former loop: one ``assign`` per image."""
    pos_index, gt_index, target_labels, offset = [], [], [], 0
    for i in range(IMAGES):
        result = head.assigner2d.assign(preds['enc_bbox_preds'][i], preds['enc_cls_scores'][i],
                                        preds['pred_centers2d'][i], boxes[i], labels[i], centers[i],
                                        {'pad_shape': PAD})
        image_labels = labels[i].new_full((TOKENS,), CLASSES)
        image_labels[result.pos_inds] = labels[i][result.pos_assigned_gt_inds]
        target_labels.append(image_labels)
        pos_index.append(result.pos_inds + i * TOKENS)
        gt_index.append(result.pos_assigned_gt_inds + offset)
        offset += boxes[i].shape[0]
    return torch.cat(pos_index), torch.cat(gt_index), torch.cat(target_labels)


@pytest.mark.parametrize('counts,non_finite', [([3, 0, 40, 1, 7], False), ([0] * IMAGES, False),
                                               ([2, 9, 0, 31, 5], True)])
def test_batched_assignment_equals_the_per_image_loop(counts, non_finite) -> None:
    head = _head()
    preds, boxes, labels, centers = _case(11, counts, non_finite)
    got = head._assign(preds, boxes, labels, centers, PAD)
    want = _reference(head, preds, boxes, labels, centers)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_focal_losses_unchanged_and_one_copy_each_way(monkeypatch) -> None:
    head = _head()
    preds, boxes, labels, centers = _case(4, [3, 0, 12, 1, 7], False)
    preds['centerness'] = torch.randn(IMAGES, TOKENS, 1)
    nested = ([boxes], [labels], [centers])
    batched = head.loss(*nested, preds, PAD)
    monkeypatch.setattr(head, '_assign', lambda p, b, lab, c, pad: _reference(head, p, b, lab, c))
    reference = head.loss(*nested, preds, PAD)
    assert batched.keys() == reference.keys()
    assert all(torch.equal(batched[k], reference[k]) for k in batched)
    monkeypatch.undo()
    calls = []
    real_cpu, real_to_device = torch.Tensor.cpu, focal_head.indices_to_device
    monkeypatch.setattr(torch.Tensor, 'cpu', lambda self, *a, **k: calls.append('cpu') or real_cpu(self, *a, **k))
    monkeypatch.setattr(focal_head, 'indices_to_device',
                        lambda arrays, device: calls.append('to_device') or real_to_device(arrays, device))
    head._assign(preds, boxes, labels, centers, PAD)
    assert calls == ['cpu', 'to_device']
    assert hungarian_matching.indices_to_device is real_to_device
