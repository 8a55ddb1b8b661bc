"""RayDNHead on random multi-level features: outputs, DN isolation, losses, saved constants."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

EMBED, NUM_CAMS, PAD = 32, 2, (64, 176)
SHAPES = [(8, 22), (4, 11), (2, 6), (1, 3)]
PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


def head_cfg(dropout: float = 0.0) -> dict:
    layer = dict(
        type="Detr3DTemporalDecoderLayer", batch_first=True, with_cp=False,
        attn_cfgs=[dict(type="MultiheadAttention", embed_dims=EMBED, num_heads=4, dropout=dropout),
                   dict(type="DeformableFeatureAggregationCuda", embed_dims=EMBED, num_groups=4,
                        num_levels=4, num_cams=NUM_CAMS, dropout=dropout, num_pts=13, bias=2.0)],
        ffn_cfgs=dict(type="FFN", feedforward_channels=64),
        operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"))
    return dict(
        type="RayDNHead", num_classes=10, in_channels=EMBED, embed_dims=EMBED, num_query=6,
        memory_len=10, topk_proposals=3, num_propagated=3, scalar=2, noise_scale=1.0, split=0.75,
        raydn_group=1, raydn_num=5, match_with_velo=False,
        code_weights=[2.0, 2.0] + [1.0] * 8,
        transformer=dict(type="Detr3DTransformer", decoder=dict(
            type="Detr3DTransformerDecoder", num_layers=2, transformerlayers=layer)),
        bbox_coder=dict(type="NMSFreeCoder", pc_range=PC_RANGE, max_num=10, num_classes=10,
                        post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]),
        loss_iou=dict(type="GIoULoss", loss_weight=0.0),
        train_cfg=dict(assigner=dict(type="HungarianAssigner3D", cls_cost=dict(type="FocalLossCost", weight=2.0),
                                     reg_cost=dict(type="BBox3DL1Cost", weight=0.25),
                                     iou_cost=dict(type="IoUCost", weight=0.0), pc_range=PC_RANGE)))


def _inputs(batch: int = 2, prev_exists: bool = False) -> dict:
    gen = torch.Generator().manual_seed(0)
    cams = []
    for n in range(NUM_CAMS):
        yaw = 2 * math.pi * n / NUM_CAMS
        intr = torch.eye(4)
        intr[:3, :3] = torch.tensor([[80.0, 0, 88.0], [0, 80.0, 32.0], [0, 0, 1.0]])
        extr = torch.eye(4)
        extr[:3, :3] = torch.tensor([[math.sin(yaw), -math.cos(yaw), 0.0], [0.0, 0.0, -1.0],
                                     [math.cos(yaw), math.sin(yaw), 0.0]])
        cams.append((intr @ extr, intr, extr))
    l2i, intr, extr = (torch.stack([c[i] for c in cams]).expand(batch, -1, -1, -1) for i in range(3))
    return dict(
        img_feats=[torch.randn(batch, NUM_CAMS, EMBED, h, w, generator=gen) for h, w in SHAPES],
        lidar2img=l2i, intrinsics=intr, extrinsics=extr,
        ego_pose=torch.eye(4).repeat(batch, 1, 1), ego_pose_inv=torch.eye(4).repeat(batch, 1, 1),
        timestamp=torch.zeros(batch, dtype=torch.float64),
        prev_exists=torch.full((batch,), prev_exists), pad_shape=PAD)


def _gt(shift: float = 0.0):
    boxes = torch.tensor([[15.0 + shift, 1.0, 0.0, 4.0, 2.0, 1.5, 0.2, 1.0, 0.0],
                          [-12.0, 3.0 - shift, 0.5, 0.8, 0.7, 1.7, 1.0, 0.0, 0.5]])
    return [boxes, boxes[:1]], [torch.tensor([0, 8]), torch.tensor([2])]


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    return MODELS.build(head_cfg())


def test_training_forward_shapes_and_losses(head):
    head.train()
    head.reset_memory()
    gt_boxes, gt_labels = _gt()
    preds = head(**_inputs(), gt_bboxes_3d=gt_boxes, gt_labels_3d=gt_labels)
    dn = preds["dn"]
    assert dn.pad_size == 2 * (2 + 5)
    assert preds["all_cls_scores"].shape == (2, 2, 6 + 3, 10)
    assert preds["all_bbox_preds"].shape == (2, 2, 9, 10)
    assert preds["dn_cls_scores"].shape == (2, 2, dn.pad_size, 10)
    losses = head.loss(gt_boxes, gt_labels, preds)
    assert set(losses) == {"loss_cls", "loss_bbox", "d0.loss_cls", "d0.loss_bbox", "dn_loss_cls",
                           "dn_loss_bbox", "d0.dn_loss_cls", "d0.dn_loss_bbox"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert head.query_embedding[0].weight.grad.abs().sum() > 0
    assert head.pseudo_reference_points.weight.requires_grad is False


def test_denoising_queries_are_invisible_to_matching_queries(head):
    head.train()
    outs = []
    for shift in (0.0, 5.0):
        head.reset_memory()
        torch.manual_seed(1)
        gt_boxes, gt_labels = _gt(shift)
        with torch.no_grad():
            outs.append(head(**_inputs(), gt_bboxes_3d=gt_boxes, gt_labels_3d=gt_labels))
    assert torch.allclose(outs[0]["all_cls_scores"], outs[1]["all_cls_scores"], atol=1e-5)
    assert not torch.allclose(outs[0]["dn_bbox_preds"], outs[1]["dn_bbox_preds"])


def test_eval_has_no_denoising_and_predicts(head):
    head.eval()
    head.reset_memory()
    with torch.no_grad():
        preds = head(**_inputs())
        preds_next = head(**_inputs(prev_exists=True))
    assert preds["dn"] is None and preds["dn_cls_scores"].shape[2] == 0
    results = head.predict(preds_next)
    assert len(results) == 2 and results[0]["boxes_3d"].shape == (10, 9)


def test_recordable_points_are_the_values_the_forward_uses(head, record_calls):
    head.train()
    head.reset_memory()
    references, codes = record_calls(head, "query_reference_points"), record_calls(head, "box_codes")
    gt_boxes, gt_labels = _gt()
    with torch.no_grad():
        preds = head(**_inputs(), gt_bboxes_3d=gt_boxes, gt_labels_3d=gt_labels)
    pad = preds["dn"].pad_size
    assert len(references) == 1 and references[0][1].shape == (2, pad + 6 + 3, 3)
    assert torch.equal(references[0][1][:, pad:], preds["reference_points"])
    assert [args[0] for args, _ in codes] == [0, 1]
    assert torch.equal(torch.stack([out for _, out in codes]),
                       torch.cat([preds["dn_bbox_preds"], preds["all_bbox_preds"]], dim=2))
    assert not hasattr(head, "reference_points_probe") and not hasattr(head, "token_points")


def test_saved_constants_and_tied_branches(head):
    state = copy.deepcopy(head.state_dict())
    assert {"code_weights", "match_costs", "pc_range", "pseudo_reference_points.weight"} <= set(state)
    assert "cls_branches.1.0.weight" in state
    fresh = MODELS.build(head_cfg())
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.pseudo_reference_points.weight, head.pseudo_reference_points.weight)
    assert "code_weights" not in dict(fresh.named_parameters())
    bad = dict(state, pc_range=torch.zeros(6))
    with pytest.raises(ValueError, match="pc_range"):
        fresh.load_state_dict(bad, strict=True)
    untied = dict(state)
    untied["reg_branches.1.0.weight"] = state["reg_branches.1.0.weight"] + 1
    with pytest.raises(ValueError, match="reg_branches"):
        fresh.load_state_dict(untied, strict=True)


def test_unsupported_settings_raise():
    cfg = head_cfg()
    cfg["loss_iou"] = dict(type="GIoULoss", loss_weight=2.0)
    with pytest.raises(ValueError, match="IoU"):
        MODELS.build(cfg)
    cfg = head_cfg()
    cfg["in_channels"] = 64
    with pytest.raises(ValueError, match="in_channels"):
        MODELS.build(cfg)
