"""YOLOXHeadCustom (RayDN's 2D auxiliary head) and its SimOTA assigner."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.assigners.sim_ota_assigner import SimOTAAssigner
from projects.mmdet3d_plugin.models.dense_heads.yolox_head import grid_priors
from projects.mmdet3d_plugin.registry import MODELS

STRIDES = [8, 16, 32, 64]
SHAPES = [(8, 22), (4, 11), (2, 6), (1, 3)]


def _head():
    torch.manual_seed(0)
    return MODELS.build(dict(
        type="YOLOXHeadCustom", num_classes=10, in_channels=16, feat_channels=16, strides=STRIDES,
        train_cfg=dict(assigner=dict(type="SimOTAAssigner", center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type="nms", iou_threshold=0.65))))


def test_priors_follow_row_major_cells():
    priors = grid_priors([(2, 3)], [8], torch.float32, torch.device("cpu"))
    assert priors[:, :2].tolist() == [[0, 0], [8, 0], [16, 0], [0, 8], [8, 8], [16, 8]]
    assert (priors[:, 2:] == 8).all()


def test_forward_shapes_and_checkpoint_names():
    head = _head()
    feats = [torch.randn(1, 2, 16, h, w) for h, w in SHAPES]
    out = head(feats)
    assert [tuple(m.shape) for m in out["enc_cls_scores"]] == [(2, 10, h, w) for h, w in SHAPES]
    assert out["pred_centers2d_offset"][0].shape == (2, 2, 8, 22) and out["topk_indexes"] is None
    keys = set(head.state_dict())
    assert "multi_level_cls_convs.0.1.bn.running_mean" in keys
    assert "multi_level_reg_convs.3.0.conv.weight" in keys and "multi_level_reg_convs.3.0.conv.bias" not in keys
    assert torch.allclose(head.multi_level_conv_obj[0].bias, torch.tensor([-4.59512]), atol=1e-4)


def test_losses_finite_with_and_without_gt():
    head = _head().train()
    feats = [torch.randn(1, 2, 16, h, w, requires_grad=True) for h, w in SHAPES]
    out = head(feats)
    gt_bboxes = [[torch.tensor([[40.0, 10.0, 120.0, 50.0]]), torch.zeros(0, 4)]]
    gt_labels = [[torch.tensor([3]), torch.zeros(0, dtype=torch.long)]]
    centers = [[torch.tensor([[82.0, 31.0]]), torch.zeros(0, 2)]]
    losses = head.loss(gt_bboxes, gt_labels, centers, out)
    assert set(losses) == {"enc_loss_cls", "enc_loss_iou", "enc_loss_obj", "enc_loss_bbox", "enc_loss_centers2d"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert feats[0].grad.abs().sum() > 0
    with pytest.raises(ValueError, match="images"):
        head.loss(gt_bboxes[:0], gt_labels[:0], centers[:0], out)


def test_simota_assigns_candidates_inside_the_box():
    priors = grid_priors(SHAPES, STRIDES, torch.float32, torch.device("cpu"))
    centres = torch.cat([priors[:, :2] + priors[:, 2:] / 2, priors[:, 2:]], dim=-1)
    gt = torch.tensor([[40.0, 10.0, 120.0, 50.0], [0.0, 0.0, 20.0, 20.0]])
    decoded = torch.cat([centres[:, :2] - 12, centres[:, :2] + 12], dim=-1)
    scores = torch.full((priors.shape[0], 10), 0.3)
    result = SimOTAAssigner(center_radius=2.5).assign(scores, centres, decoded, gt, torch.tensor([3, 5]))
    pos = result.pos_inds
    assert pos.numel() >= 2 and set(result.pos_assigned_gt_inds.tolist()) == {0, 1}
    for index, gt_index in zip(pos.tolist(), result.pos_assigned_gt_inds.tolist()):
        x, y = centres[index, :2].tolist()
        box = gt[gt_index]
        assert box[0] < x < box[2] and box[1] < y < box[3]
        assert result.labels[index] == [3, 5][gt_index]
    assert (result.max_overlaps[pos] > 0).all()
    empty = SimOTAAssigner().assign(scores, centres, decoded, gt[:0], torch.zeros(0, dtype=torch.long))
    assert empty.pos_inds.numel() == 0
