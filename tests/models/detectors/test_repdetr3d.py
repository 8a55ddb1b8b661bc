"""RepDetr3D (RayDN) end to end on CPU with tiny dimensions."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

EMBED = 32
IMG_H, IMG_W = 64, 176
PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


def tiny_model_cfg(num_cams: int = 2, with_roi_head: bool = True) -> dict:
    """A RayDN config shrunk to embed_dims 32, 2 layers, 8 queries, ResNet18 + FPN."""
    layer = dict(
        type="Detr3DTemporalDecoderLayer", batch_first=True,
        attn_cfgs=[dict(type="MultiheadAttention", embed_dims=EMBED, num_heads=4, dropout=0.1),
                   dict(type="DeformableFeatureAggregationCuda", embed_dims=EMBED, num_groups=4,
                        num_levels=4, num_cams=num_cams, dropout=0.1, num_pts=13, bias=2.0)],
        ffn_cfgs=dict(type="FFN", feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                      act_cfg=dict(type="ReLU", inplace=True)),
        feedforward_channels=2048, ffn_dropout=0.1, with_cp=True,
        operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"))
    head = dict(
        type="RayDNHead", num_classes=10, in_channels=EMBED, embed_dims=EMBED, num_query=8,
        memory_len=12, topk_proposals=4, num_propagated=4, scalar=2, noise_scale=1.0, dn_weight=1.0,
        split=0.75, with_dn=True, raydn_group=1, raydn_num=5, raydn_alpha=8, raydn_beta=2,
        raydn_radius=3, with_ego_pos=True, match_with_velo=False,
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(type="Detr3DTransformer", decoder=dict(
            type="Detr3DTransformerDecoder", embed_dims=EMBED, num_layers=2, transformerlayers=layer)),
        bbox_coder=dict(type="NMSFreeCoder", post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
                        pc_range=PC_RANGE, max_num=20, voxel_size=[0.2, 0.2, 8], num_classes=10),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type="L1Loss", loss_weight=0.25),
        loss_iou=dict(type="GIoULoss", loss_weight=0.0))
    roi_head = dict(
        type="YOLOXHeadCustom", num_classes=10, in_channels=EMBED, feat_channels=EMBED,
        strides=[8, 16, 32, 64],
        train_cfg=dict(assigner=dict(type="SimOTAAssigner", center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type="nms", iou_threshold=0.65)))
    return dict(
        type="RepDetr3D", num_frame_head_grads=1, num_frame_backbone_grads=1, num_frame_losses=1,
        use_grid_mask=True, stride=[8, 16, 32, 64], position_level=[0, 1, 2, 3],
        img_backbone=dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                          frozen_stages=-1, norm_cfg=dict(type="BN2d", requires_grad=False),
                          norm_eval=True, with_cp=True, style="pytorch"),
        img_neck=dict(type="FPN", start_level=1, add_extra_convs="on_output", relu_before_extra_convs=True,
                      in_channels=[64, 128, 256, 512], out_channels=EMBED, num_outs=4),
        img_roi_head=roi_head if with_roi_head else None,
        pts_bbox_head=head,
        train_cfg=dict(pts=dict(
            grid_size=[512, 512, 1], voxel_size=[0.2, 0.2, 8], point_cloud_range=PC_RANGE,
            out_size_factor=4,
            assigner=dict(type="HungarianAssigner3D", cls_cost=dict(type="FocalLossCost", weight=2.0),
                          reg_cost=dict(type="BBox3DL1Cost", weight=0.25),
                          iou_cost=dict(type="IoUCost", weight=0.0), pc_range=PC_RANGE))))


def _camera(yaw: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """lidar2img, intrinsics, extrinsics (4, 4) of a camera at the origin looking along yaw."""
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.tensor([[80.0, 0.0, IMG_W / 2], [0.0, 80.0, IMG_H / 2], [0.0, 0.0, 1.0]])
    forward = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
    right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
    extrinsics = torch.eye(4)
    extrinsics[:3, :3] = torch.stack([right, torch.tensor([0.0, 0.0, -1.0]), forward])
    return intrinsics @ extrinsics, intrinsics, extrinsics


def make_batch(batch: int = 2, num_cams: int = 2, prev_exists: bool = False, t: float = 0.0) -> dict:
    """A contract-shaped batch with GT in front of camera 0."""
    gen = torch.Generator().manual_seed(int(t * 10))
    cams = [_camera(2 * math.pi * n / num_cams) for n in range(num_cams)]
    stack = [torch.stack([c[i] for c in cams]).unsqueeze(0).repeat(batch, 1, 1, 1) for i in range(3)]
    boxes = torch.tensor([[15.0, 1.0, 0.0, 4.0, 2.0, 1.5, 0.2, 1.0, 0.0],
                          [22.0, -3.0, 0.5, 0.8, 0.7, 1.7, 1.0, 0.0, 0.5]])
    gt_2d = [torch.tensor([[60.0, 20.0, 110.0, 45.0]]) for _ in range(num_cams)]
    return dict(
        img=torch.randn(batch, num_cams, 3, IMG_H, IMG_W, generator=gen),
        lidar2img=stack[0], intrinsics=stack[1], extrinsics=stack[2],
        ego_pose=torch.eye(4).repeat(batch, 1, 1), ego_pose_inv=torch.eye(4).repeat(batch, 1, 1),
        timestamp=torch.full((batch,), t, dtype=torch.float64),
        prev_exists=torch.full((batch,), prev_exists, dtype=torch.bool),
        img_shape=[(IMG_H, IMG_W)] * batch, pad_shape=[(IMG_H, IMG_W)] * batch,
        gt_bboxes_3d=[boxes.clone() for _ in range(batch - 1)] + [torch.zeros(0, 9)],
        gt_labels_3d=[torch.tensor([0, 8]) for _ in range(batch - 1)] + [torch.zeros(0, dtype=torch.long)],
        gt_bboxes=[[b.clone() for b in gt_2d] for _ in range(batch)],
        gt_labels=[[torch.tensor([0]) for _ in range(num_cams)] for _ in range(batch)],
        centers2d=[[torch.tensor([[85.0, 32.0]]) for _ in range(num_cams)] for _ in range(batch)],
        depths=[[torch.tensor([15.0]) for _ in range(num_cams)] for _ in range(batch)],
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS.build(tiny_model_cfg())


def test_loss_mode_backward_reaches_backbone(model):
    model.train()
    losses = model(make_batch(), mode="loss")
    expected = {"loss_cls", "loss_bbox", "d0.loss_cls", "d0.loss_bbox", "dn_loss_cls", "dn_loss_bbox",
                "d0.dn_loss_cls", "d0.dn_loss_bbox", "enc_loss_cls", "enc_loss_iou", "enc_loss_obj",
                "enc_loss_bbox", "enc_loss_centers2d"}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    model.zero_grad()
    sum(v for k, v in losses.items() if "loss" in k).backward()
    grad = model.img_backbone.layer4[0].conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # Layer 0 sees all-zero queries on a scene's first frame: its offsets learn via the bias.
    dfa = model.pts_bbox_head.transformer.decoder.layers[0].attentions[1]
    assert dfa.learnable_fc.bias.grad.abs().sum() > 0
    assert sum(conv.weight.grad.abs().sum() for conv in model.img_roi_head.multi_level_conv_centers2d) > 0


def test_predict_shapes_and_memory_stream(model):
    model.eval()
    with torch.no_grad():
        first = model(make_batch(prev_exists=False, t=0.0), mode="predict")
        memory = model.pts_bbox_head.memory
        assert memory.embedding.shape == (2, 12, EMBED)
        second = model(make_batch(prev_exists=True, t=0.5), mode="predict")
    for out in first + second:
        assert out["boxes_3d"].shape[1] == 9 and out["boxes_3d"].shape[0] == out["scores_3d"].shape[0]
        assert out["labels_3d"].dtype == torch.int64
    # Between frames entries are stored with timestamp -t_push: 4 pushed at t=0.5, 4 at t=0.
    assert torch.allclose(memory.timestamp[:, :4], torch.full((2, 4, 1), -0.5, dtype=torch.float64))
    assert torch.allclose(memory.timestamp[:, 4:8], torch.zeros(2, 4, 1, dtype=torch.float64))


def test_memory_reset_on_new_scene(model):
    model.eval()
    with torch.no_grad():
        model(make_batch(prev_exists=False, t=0.0), mode="predict")
        model(make_batch(prev_exists=True, t=0.5), mode="predict")
        head = model.pts_bbox_head
        prev_exists = torch.tensor([True, False])
        head._pre_update_memory(prev_exists, torch.tensor([1.0, 1.0], dtype=torch.float64),
                                torch.eye(4).repeat(2, 1, 1))
    memory = head.memory
    assert memory.embedding[1].abs().sum() == 0 and memory.embedding[0].abs().sum() > 0
    pseudo = head.pseudo_reference_points.weight * (head.pc_range[3:] - head.pc_range[:3]) + head.pc_range[:3]
    assert torch.allclose(memory.reference_point[1, :4], pseudo)
    model.reset_memory()
    assert memory.is_empty


def test_memory_has_no_hidden_reset_between_modes(model):
    model.eval()
    with torch.no_grad():
        model(make_batch(t=0.0), mode="predict")
    pushed = model.pts_bbox_head.memory.state()["embedding"]
    model.train()
    model(make_batch(prev_exists=True, t=0.5), mode="loss")
    topk = 4
    # The predict frame's entries were kept and moved one push (topk entries) down.
    assert torch.equal(model.pts_bbox_head.memory.embedding[:, topk:2 * topk], pushed[:, :topk])


def test_unsupported_arguments_raise():
    cfg = tiny_model_cfg()
    cfg["num_frame_losses"] = 2
    with pytest.raises(ValueError, match="num_frame_losses=2"):
        MODELS.build(cfg)
    cfg = tiny_model_cfg()
    cfg["pts_bbox_head"]["num_querys"] = 3
    with pytest.raises(TypeError):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match="mode"):
        MODELS.build(tiny_model_cfg(with_roi_head=False))(make_batch(), mode="test")


# ---------------------------------------------------------------- label-scarce training
def deterministic_model() -> torch.nn.Module:
    """The tiny model without dropout and grid mask: its losses depend only on the seed."""
    cfg = tiny_model_cfg()
    cfg["use_grid_mask"] = False
    layer = cfg["pts_bbox_head"]["transformer"]["decoder"]["transformerlayers"]
    for attn in layer["attn_cfgs"]:
        attn["dropout"] = 0.0
    layer["ffn_dropout"] = 0.0
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def unlabel(batch: dict, slots: list[int]) -> dict:
    """The batch with ``gt_labelled`` False (and the GT emptied, as the dataset does) at ``slots``."""
    for key in ("gt_bboxes_3d", "gt_labels_3d"):
        batch[key] = [v[:0] if b in slots else v for b, v in enumerate(batch[key])]
    for key in ("gt_bboxes", "gt_labels", "centers2d", "depths"):
        batch[key] = [[v[:0] for v in cams] if b in slots else cams for b, cams in enumerate(batch[key])]
    batch["gt_labelled"] = torch.tensor([b not in slots for b in range(batch["img"].shape[0])])
    return batch


def sample(batch: dict, b: int) -> dict:
    """Sample ``b`` of a batch as a batch of one, without ``gt_labelled``."""
    return {k: v[b:b + 1] for k, v in batch.items() if k != "gt_labelled"}


def seeded_losses(model: torch.nn.Module, batch: dict) -> dict:
    torch.manual_seed(1)
    return model(batch, mode="loss")


def test_unlabelled_sample_adds_nothing_to_the_losses() -> None:
    model = deterministic_model()
    alone_model, background_model = copy.deepcopy(model), copy.deepcopy(model)
    batch = unlabel(make_batch(), [1])
    mixed = seeded_losses(model, batch)
    alone = seeded_losses(alone_model, sample(batch, 0))
    assert set(mixed) == set(alone)
    for key in mixed:
        torch.testing.assert_close(mixed[key], alone[key], rtol=1e-6, atol=1e-6, msg=key)
    # Without the flag the empty sample is "background everywhere": different set losses.
    background = seeded_losses(background_model, {k: v for k, v in batch.items() if k != "gt_labelled"})
    assert not torch.allclose(background["loss_cls"], alone["loss_cls"])
    # The head still ran on both samples: both memory slots were written.
    assert (model.pts_bbox_head.memory.embedding.abs().sum(dim=(1, 2)) > 0).all()


def test_all_unlabelled_batch_gives_graph_zeros_and_pseudo_label_dn_losses() -> None:
    model = deterministic_model()
    labelled_keys = set(seeded_losses(copy.deepcopy(model), make_batch()))
    batch = unlabel(make_batch(), [0, 1])
    batch["pseudo_bboxes_3d"] = [make_batch()["gt_bboxes_3d"][0], torch.zeros(0, 9)]
    batch["pseudo_labels_3d"] = [torch.tensor([0, 8]), torch.zeros(0, dtype=torch.long)]
    losses = seeded_losses(model, batch)
    assert set(losses) == labelled_keys
    for key, value in losses.items():
        assert value.grad_fn is not None, key
        assert (value > 0) if "dn_loss" in key else (value == 0), key
    model.zero_grad()
    sum(losses.values()).backward()
    assert model.img_backbone.layer4[0].conv1.weight.grad.abs().sum() > 0  # through the DN losses
    assert all(conv.weight.grad is not None for conv in model.img_roi_head.multi_level_conv_cls)


def test_flag_all_true_is_the_batch_without_the_flag() -> None:
    model = deterministic_model()
    without = seeded_losses(copy.deepcopy(model), make_batch())
    flagged = make_batch()
    flagged["gt_labelled"] = torch.tensor([True, True])
    with_flag = seeded_losses(model, flagged)
    assert set(with_flag) == set(without)
    assert all(torch.equal(with_flag[key], without[key]) for key in without)


def test_unlabelled_sample_with_ground_truth_raises() -> None:
    batch = make_batch()
    batch["gt_labelled"] = torch.tensor([False, True])
    with pytest.raises(ValueError, match="gt_labelled=False but carry gt_bboxes_3d"):
        deterministic_model()(batch, mode="loss")


def _grad_norm(model: torch.nn.Module, batch: dict) -> float:
    losses = model(batch, mode="loss")
    model.zero_grad()
    sum(value for key, value in losses.items() if "loss" in key).backward()
    return float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm())


def test_first_frame_gradient_at_initialisation_is_not_a_spike():
    # With an all-zero initial shift in ego_pose_memory, every query of a scene's first frame
    # had the same zero content, and the post-norm LayerNorms amplified its gradient ~1e4x.
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    model.train()
    first = _grad_norm(model, make_batch(prev_exists=False, t=0.0))
    later = [_grad_norm(model, make_batch(prev_exists=True, t=0.5 * k)) for k in (1, 2)]
    assert first < 5 * max(later), (first, later)
