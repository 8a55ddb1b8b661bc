"""Teacher pseudo-labels: selection, and extra DN queries in tiny StreamPETR / RayDN heads."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.pseudo_labels import PseudoLabeler, select_pseudo_labels
from projects.mmdet3d_plugin.kd.recorders import TapManager
from projects.mmdet3d_plugin.models.dense_heads.dn_ground_truth import dn_ground_truth
from projects.mmdet3d_plugin.models.utils.misc import locations
from projects.mmdet3d_plugin.registry import MODELS

PC = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
DIMS, B, N, H, W = 32, 2, 2, 4, 11
CODER = dict(type="NMSFreeCoder", pc_range=PC, max_num=10, num_classes=10,
             post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0])
ASSIGNER = dict(type="HungarianAssigner3D", cls_cost=dict(type="FocalLossCost", weight=2.0),
                reg_cost=dict(type="BBox3DL1Cost", weight=0.25), iou_cost=dict(type="IoUCost", weight=0.0),
                pc_range=PC)
COMMON = dict(num_classes=10, in_channels=DIMS, embed_dims=DIMS, num_query=6, memory_len=8,
              topk_proposals=2, num_propagated=2, scalar=2, noise_scale=1.0, split=0.75,
              match_with_velo=False, bbox_coder=CODER, loss_iou=dict(type="GIoULoss", loss_weight=0.0),
              train_cfg=dict(assigner=ASSIGNER))


def _layer(cross: dict) -> dict:
    return dict(attn_cfgs=[dict(type="MultiheadAttention", embed_dims=DIMS, num_heads=4, dropout=0.0), cross],
                with_cp=False, operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"))


def streampetr_cfg() -> dict:
    layer = dict(type="PETRTemporalDecoderLayer", feedforward_channels=64, ffn_dropout=0.0,
                 **_layer(dict(type="PETRMultiheadFlashAttention", embed_dims=DIMS, num_heads=4, dropout=0.0)))
    return dict(type="StreamPETRHead", LID=True, position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
                transformer=dict(type="PETRTemporalTransformer", decoder=dict(
                    type="PETRTransformerDecoder", return_intermediate=True, num_layers=1,
                    transformerlayers=layer)), **COMMON)


def raydn_cfg() -> dict:
    dfa = dict(type="DeformableFeatureAggregation", embed_dims=DIMS, num_groups=4, num_levels=1,
               num_cams=N, dropout=0.0, num_pts=13)
    layer = dict(type="Detr3DTemporalDecoderLayer", ffn_cfgs=dict(type="FFN", feedforward_channels=64), **_layer(dfa))
    return dict(type="RayDNHead", raydn_group=1, raydn_num=3, transformer=dict(type="Detr3DTransformer", decoder=dict(
        type="Detr3DTransformerDecoder", num_layers=1, transformerlayers=layer)), **COMMON)


def head_inputs(kind: str) -> dict:
    """Random features and N outward-looking cameras for a tiny head."""
    torch.manual_seed(1)
    intrinsics = torch.eye(4).repeat(B, N, 1, 1)
    intrinsics[..., 0, 0] = intrinsics[..., 1, 1] = 100.0
    intrinsics[..., 0, 2], intrinsics[..., 1, 2] = W * 8, H * 8
    axes = torch.tensor([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    rotations = []
    for cam in range(N):
        rot, yaw = torch.eye(4), 2 * math.pi * cam / N
        rot[:2, :2] = torch.tensor([[math.cos(yaw), math.sin(yaw)], [-math.sin(yaw), math.cos(yaw)]])
        rotations.append(axes @ rot)
    extrinsics = torch.stack(rotations).expand(B, -1, -1, -1)
    feats = torch.randn(B, N, DIMS, H, W)
    inputs = dict(lidar2img=intrinsics @ extrinsics, intrinsics=intrinsics, ego_pose=torch.eye(4).repeat(B, 1, 1),
                  ego_pose_inv=torch.eye(4).repeat(B, 1, 1), timestamp=torch.zeros(B, dtype=torch.float64),
                  prev_exists=torch.zeros(B, dtype=torch.bool), pad_shape=(H * 16, W * 16))
    if kind == "raydn":
        return dict(img_feats=[feats], extrinsics=extrinsics, **inputs)
    grid = locations(feats.flatten(0, 1), 16, H * 16, W * 16)[None].expand(B * N, -1, -1, -1)
    return dict(img_feats=feats, locations=grid, **inputs)


def _gt():
    boxes = [torch.tensor([[10.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.3, 0.0, 0.0],
                           [-8.0, 5.0, 0.0, 1.0, 1.0, 1.7, 1.0, 0.0, 0.0]]),
             torch.tensor([[3.0, -12.0, 0.0, 4.5, 2.0, 1.6, -1.0, 1.0, 0.0]])]
    return boxes, [torch.tensor([0, 8]), torch.tensor([1])]


def test_select_filters_by_score_sorts_and_caps() -> None:
    boxes = torch.tensor([[float(i), 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0] for i in range(5)])
    boxes[3, 4] = 0.0  # zero width: dropped
    scores = torch.tensor([0.2, 0.9, 0.5, 0.95, 0.6])
    labels = torch.tensor([0, 1, 2, 3, 4])
    kept_boxes, kept_labels = select_pseudo_labels(boxes, scores, labels, score_thr=0.5, max_num=2)
    assert kept_labels.tolist() == [1, 4] and kept_boxes[:, 0].tolist() == [1.0, 4.0]
    assert select_pseudo_labels(boxes, scores, labels, 0.5, 10)[1].tolist() == [1, 4, 2]
    assert select_pseudo_labels(boxes, scores, labels, 0.99, 10)[0].shape == (0, 9)
    with pytest.raises(ValueError, match="boxes_3d"):
        select_pseudo_labels(boxes[:, :7], scores, labels, 0.5, 2)


def test_pseudo_labeler_over_a_batch_and_dn_ground_truth() -> None:
    preds = [dict(boxes_3d=_gt()[0][0], scores_3d=torch.tensor([0.7, 0.1]), labels_3d=torch.tensor([3, 4])),
             dict(boxes_3d=torch.zeros(0, 9), scores_3d=torch.zeros(0), labels_3d=torch.zeros(0, dtype=torch.long))]
    boxes, labels = PseudoLabeler(score_thr=0.3, max_num=5)(preds)
    assert [b.shape[0] for b in boxes] == [1, 0] and labels[0].tolist() == [3]
    gt_boxes, gt_labels = _gt()
    merged_boxes, merged_labels = dn_ground_truth(gt_boxes, gt_labels, boxes, labels)
    assert [b.shape[0] for b in merged_boxes] == [3, 1] and merged_labels[0].tolist() == [0, 8, 3]
    assert dn_ground_truth(gt_boxes, gt_labels, None, None) == (gt_boxes, gt_labels)
    with pytest.raises(ValueError, match="must come together"):
        dn_ground_truth(gt_boxes, gt_labels, boxes, None)
    with pytest.raises(KeyError, match="scores_3d"):
        PseudoLabeler()([dict(boxes_3d=torch.zeros(0, 9))])


@pytest.mark.parametrize("kind, groups", [("streampetr", 2), ("raydn", 2 + 3)])
def test_pseudo_targets_grow_the_dn_queries_only(kind, groups) -> None:
    torch.manual_seed(0)
    head = MODELS.build(streampetr_cfg() if kind == "streampetr" else raydn_cfg()).train()
    gt_boxes, gt_labels = _gt()
    pseudo_boxes = [torch.tensor([[20.0, -3.0, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0]]),
                    torch.tensor([[-15.0, 9.0, 0.0, 0.8, 0.8, 1.7, 0.0, 0.0, 0.0],
                                  [6.0, 6.0, 0.0, 4.0, 2.0, 1.5, 0.5, 0.0, 0.0]])]
    pseudo_labels = [torch.tensor([2]), torch.tensor([8, 0])]
    head.reset_memory()
    plain = head(**head_inputs(kind), gt_bboxes_3d=gt_boxes, gt_labels_3d=gt_labels)
    head.reset_memory()
    extra = head(**head_inputs(kind), gt_bboxes_3d=gt_boxes, gt_labels_3d=gt_labels,
                 pseudo_bboxes_3d=pseudo_boxes, pseudo_labels_3d=pseudo_labels)
    assert plain["dn"].pad_size == groups * 2 and extra["dn"].pad_size == groups * 3
    assert extra["dn_cls_scores"].shape[2] == groups * 3
    assert extra["dn"].num_targets == groups * 6 and plain["dn"].num_targets == groups * 3
    assert any(torch.equal(row, pseudo_boxes[1][1]) for row in extra["dn"].bboxes)
    # DN queries are hidden from the matching queries: their outputs and the set loss are unchanged.
    torch.testing.assert_close(plain["all_cls_scores"], extra["all_cls_scores"])
    plain_losses = head.loss(gt_boxes, gt_labels, plain)
    extra_losses = head.loss(gt_boxes, gt_labels, extra)
    torch.testing.assert_close(plain_losses["loss_cls"], extra_losses["loss_cls"])
    assert torch.isfinite(extra_losses["dn_loss_cls"]) and torch.isfinite(extra_losses["dn_loss_bbox"])


@pytest.mark.parametrize("kind", ["streampetr", "raydn"])
def test_head_methods_record_what_the_query_losses_need(kind) -> None:
    """The heads' recorded methods are tappable and feed the query losses (DN queries dropped)."""
    torch.manual_seed(0)
    head = MODELS.build(streampetr_cfg() if kind == "streampetr" else raydn_cfg())
    cross = "transformer.decoder.layers.0.attentions.1"
    specs = {"box": dict(path="box_codes"), "cls": dict(path="cls_branches.0")}
    if kind == "streampetr":
        specs.update(a=dict(path=f"{cross}.attn", index=1, need_weights=True),
                     b=dict(path="query_reference_points"), c=dict(path="token_points"))
    else:
        specs.update(a=dict(path=f"{cross}.key_points"), b=dict(path=f"{cross}.aggregation_weights"))
    manager = TapManager({"head": head}, {name: dict(model="head", **spec) for name, spec in specs.items()})
    gt_boxes, gt_labels = _gt()
    head.train()
    with manager.recording():
        head(**head_inputs(kind), gt_bboxes_3d=gt_boxes, gt_labels_3d=gt_labels)
        taps = {name: [manager.pop(name)] for name in manager.names}
    manager.remove()
    queries = 6 + 2
    assert taps["box"][0].shape[1] > queries and taps["box"][0].shape[-1] == 10  # DN queries in front
    if kind == "streampetr":
        assert taps["a"][0].shape[1:] == (taps["box"][0].shape[1], N * H * W)
        assert taps["c"][0].shape == (B, N * H * W, 64, 3)
        loss = MODELS.build(dict(type="DenseQueryFieldLoss", pc_range=PC, num_queries=queries,
                                 position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]))
        field = loss(taps["a"][0], taps["b"][0], taps["c"][0], taps["a"][0][:, -queries:],
                     taps["b"][0][:, -queries:], taps["c"][0])
    else:
        assert taps["a"][0].shape[2:] == (13, 3) and taps["b"][0].shape[-2:] == taps["a"][0].shape[1:3]
        loss = MODELS.build(dict(type="QueryFieldLoss", pc_range=PC, value_type="dfa_weights",
                                 num_queries=queries))
        field = loss(taps["a"][0], taps["b"][0], taps["a"][0][:, -queries:], taps["b"][0][..., -queries:, :])
    assert field.item() == pytest.approx(0.0, abs=1e-6)
    outputs = MODELS.build(dict(type="OutputDistillLoss", num_queries=queries))
    value = outputs(taps["cls"][0], taps["box"][0], taps["cls"][0][:, -queries:], taps["box"][0][:, -queries:])
    assert value.item() == pytest.approx(0.0, abs=1e-5)
