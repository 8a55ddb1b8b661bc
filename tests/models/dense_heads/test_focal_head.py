"""FocalHead: dense 2D outputs, token selection, targets and losses."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_ops import (bbox_cxcywh_to_xyxy, bbox_overlaps,
                                                      bbox_xyxy_to_cxcywh)
from projects.mmdet3d_plugin.models.dense_heads import focal_head
from projects.mmdet3d_plugin.models.dense_heads.focal_head_targets import (apply_ltrb,
                                                                           centerness_targets,
                                                                           gaussian_heatmap)
from projects.mmdet3d_plugin.models.utils.misc import locations
from projects.mmdet3d_plugin.registry import MODELS

DIMS, B, N, H, W, STRIDE = 32, 2, 2, 4, 11, 16


def _head(**overrides):
    cfg = dict(type='FocalHead', num_classes=10, in_channels=DIMS, train_cfg=dict(assigner2d=dict(
        type='HungarianAssigner2D', cls_cost=dict(type='FocalLossCost', weight=2.),
        reg_cost=dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        iou_cost=dict(type='IoUCost', iou_mode='giou', weight=2.0),
        centers2d_cost=dict(type='BBox3DL1Cost', weight=10.0))))
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _inputs():
    feats = torch.randn(B, N, DIMS, H, W)
    locs = locations(feats.flatten(0, 1), STRIDE, H * STRIDE, W * STRIDE)[None].expand(B * N, -1, -1, -1)
    return locs, feats


def _gt():
    boxes = [[torch.tensor([[10.0, 8.0, 60.0, 50.0], [100.0, 20.0, 150.0, 60.0]]), torch.zeros(0, 4)],
             [torch.tensor([[30.0, 10.0, 90.0, 40.0]]), torch.zeros(0, 4)]]
    labels = [[torch.tensor([1, 4]), torch.zeros(0, dtype=torch.long)],
              [torch.tensor([9]), torch.zeros(0, dtype=torch.long)]]
    centers = [[torch.tensor([[35.0, 30.0], [120.0, 40.0]]), torch.zeros(0, 2)],
               [torch.tensor([[60.0, 25.0]]), torch.zeros(0, 2)]]
    return boxes, labels, centers


def test_forward_shapes_and_token_selection() -> None:
    head = _head(train_ratio=0.5).train()
    outs = head(*_inputs())
    tokens = H * W
    assert outs['enc_cls_scores'].shape == (B * N, tokens, 10)
    assert outs['enc_bbox_preds'].shape == (B * N, tokens, 4)
    assert outs['pred_centers2d'].shape == (B * N, tokens, 2)
    assert outs['centerness'].shape == (B * N, tokens, 1)
    assert outs['topk_indexes'].shape == (B, N * tokens // 2, 1)
    weight = (outs['enc_cls_scores'].max(-1).values.sigmoid()
              * outs['centerness'][..., 0].sigmoid()).reshape(B, -1)
    chosen = weight.gather(1, outs['topk_indexes'][..., 0])
    assert (chosen[:, :-1] >= chosen[:, 1:]).all()
    assert chosen.min() >= weight.sort(dim=1, descending=True).values[:, N * tokens // 2 - 1].min()
    assert head.eval()(*_inputs())['topk_indexes'].shape == (B, N * tokens, 1)
    assert ((outs['enc_bbox_preds'] >= 0) & (outs['enc_bbox_preds'] <= 1)).all()


def test_losses_are_finite_named_and_train_every_output() -> None:
    head = _head().train()
    outs = head(*_inputs())
    losses = head.loss(*_gt(), outs, (H * STRIDE, W * STRIDE))
    assert set(losses) == {'enc_loss_cls', 'enc_loss_bbox', 'enc_loss_iou', 'centers2d_losses',
                           'centerness_losses'}
    assert all(torch.isfinite(v) and v.item() > 0 for v in losses.values())
    sum(losses.values()).backward()
    for module in (head.cls, head.centerness, head.ltrb, head.center2d, head.shared_reg[0]):
        assert module.weight.grad.abs().sum() > 0


def test_losses_finite_without_gt() -> None:
    head = _head().train()
    empty = ([[torch.zeros(0, 4)] * N] * B, [[torch.zeros(0, dtype=torch.long)] * N] * B,
             [[torch.zeros(0, 2)] * N] * B)
    losses = head.loss(*empty, head(*_inputs()), (H * STRIDE, W * STRIDE))
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['enc_loss_bbox'].item() == 0.0


def _flat(nested, width: int) -> list:
    """B lists of N per-image tensors as one list of ``(M, width)`` float tensors."""
    return [t.float().reshape(-1, width) for sample in nested for t in sample]


def test_normalisers_follow_upstream_with_two_ranks(monkeypatch) -> None:
    """Upstream StreamPETR FocalHead.loss_single: GIoU is divided by this rank's positives;
    bbox L1, centre L1 and centerness by the positives averaged over ranks (clamped at 1)."""
    other_rank_positives = 5.0
    monkeypatch.setattr(focal_head, "reduce_mean", lambda v: (v + other_rank_positives) / 2)
    head = _head().train()
    outs = head(*_inputs())
    boxes, labels, centers = _gt()
    pad = (H * STRIDE, W * STRIDE)
    losses = head.loss(boxes, labels, centers, outs, pad)

    gt_boxes, gt_centers = torch.cat(_flat(boxes, 4)), torch.cat(_flat(centers, 2))
    pos, gt_idx, _ = head._assign(outs, _flat(boxes, 4), [t for s in labels for t in s],
                                  _flat(centers, 2), pad)
    local = pos.numel()
    mean = max((local + other_rank_positives) / 2, 1.0)
    assert local == 3 and mean == 4.0
    factor = torch.tensor([pad[1], pad[0], pad[1], pad[0]], dtype=torch.float32)
    pred = outs['enc_bbox_preds'].reshape(-1, 4)[pos]
    giou = bbox_overlaps(bbox_cxcywh_to_xyxy(pred) * factor, gt_boxes[gt_idx], mode='giou', is_aligned=True)
    l1 = (pred - bbox_xyxy_to_cxcywh(gt_boxes[gt_idx] / factor)).abs().sum()
    c1 = (outs['pred_centers2d'].reshape(-1, 2)[pos] - gt_centers[gt_idx] / factor[:2]).abs().sum()
    eps = torch.finfo(torch.float32).eps
    assert losses['enc_loss_iou'].item() == pytest.approx(2.0 * (1 - giou).sum().item() / (local + eps), rel=1e-5)
    assert losses['enc_loss_bbox'].item() == pytest.approx(5.0 * l1.item() / (mean + eps), rel=1e-5)
    assert losses['centers2d_losses'].item() == pytest.approx(10.0 * c1.item() / (mean + eps), rel=1e-5)


def test_geometry_helpers() -> None:
    locs = torch.tensor([[[[0.5, 0.5]]]])
    box = apply_ltrb(locs, torch.tensor([[[[0.1, 0.2, 0.3, 0.6]]]]))
    assert torch.allclose(box[0, 0, 0], torch.tensor([0.6, 0.65, 0.4, 0.7]))  # y2 clipped to 1
    heat = gaussian_heatmap(torch.tensor([[3.7, 2.2]]), torch.tensor([1]), 5, 8)
    assert heat[2, 3] == 1.0 and heat[2, 4] == pytest.approx(float(torch.exp(torch.tensor(-1 / (2 * 0.25)))))
    assert heat[0].sum() == 0 and heat[:, 5:].sum() == 0
    maps = centerness_targets([torch.tensor([[40.0, 40.0]]), torch.zeros(0, 2)],
                              [torch.tensor([[0.0, 0.0, 100.0, 60.0]]), torch.zeros(0, 4)], 4, 8, 16)
    assert maps.shape == (2, 32, 1) and maps[0].max() == 1.0 and maps[1].sum() == 0


def test_bad_ratio_and_train_cfg_raise() -> None:
    with pytest.raises(ValueError, match="train_ratio"):
        _head(train_ratio=0.0)
    with pytest.raises(ValueError, match="assigner2d"):
        _head(train_cfg=dict(assigner=dict(type='HungarianAssigner2D')))
