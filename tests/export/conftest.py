"""Tiny students (embed 32, ResNet-18 + FPN, 64x176 images) and a short synthetic stream."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.export.example_frames import synthetic_frame
from projects.mmdet3d_plugin.registry import MODELS

EMBED = 32
NUM_CAMS = 6
IMG_H, IMG_W = 64, 176
PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
POST_RANGE = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
_BACKBONE = dict(type="ResNet", depth=18, num_stages=4, frozen_stages=-1,
                 norm_cfg=dict(type="BN2d", requires_grad=False), norm_eval=True,
                 with_cp=False, style="pytorch")
_CODER = dict(type="NMSFreeCoder", post_center_range=POST_RANGE, pc_range=PC_RANGE, max_num=30,
              voxel_size=[0.2, 0.2, 8], num_classes=10)
_LOSSES = dict(loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
               loss_bbox=dict(type="L1Loss", loss_weight=0.25),
               loss_iou=dict(type="GIoULoss", loss_weight=0.0))


def tiny_raydn_cfg() -> dict:
    """RepDetr3D (RayDN) student: 2 decoder layers, 16 + 4 queries, memory 12."""
    layer = dict(
        type="Detr3DTemporalDecoderLayer", batch_first=True,
        attn_cfgs=[dict(type="MultiheadAttention", embed_dims=EMBED, num_heads=4, dropout=0.1),
                   dict(type="DeformableFeatureAggregationCuda", embed_dims=EMBED, num_groups=4,
                        num_levels=4, num_cams=NUM_CAMS, dropout=0.1, num_pts=13, bias=2.0)],
        ffn_cfgs=dict(type="FFN", feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                      act_cfg=dict(type="ReLU", inplace=True)),
        feedforward_channels=2048, ffn_dropout=0.1, with_cp=False,
        operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"))
    head = dict(
        type="RayDNHead", num_classes=10, in_channels=EMBED, embed_dims=EMBED, num_query=16,
        memory_len=12, topk_proposals=4, num_propagated=4, with_dn=False, with_ego_pos=True,
        transformer=dict(type="Detr3DTransformer", decoder=dict(
            type="Detr3DTransformerDecoder", embed_dims=EMBED, num_layers=2, transformerlayers=layer)),
        bbox_coder=_CODER, **_LOSSES)
    return dict(
        type="RepDetr3D", stride=[8, 16, 32, 64], position_level=[0, 1, 2, 3],
        img_backbone=dict(out_indices=(0, 1, 2, 3), **_BACKBONE),
        img_neck=dict(type="FPN", start_level=1, add_extra_convs="on_output", relu_before_extra_convs=True,
                      in_channels=[64, 128, 256, 512], out_channels=EMBED, num_outs=4),
        pts_bbox_head=head)


def tiny_streampetr_cfg() -> dict:
    """Petr3D (StreamPETR) student: 2 decoder layers, 16 + 4 queries, memory 12."""
    layer = dict(type="PETRTemporalDecoderLayer", attn_cfgs=[
        dict(type="MultiheadAttention", embed_dims=EMBED, num_heads=4, dropout=0.1),
        dict(type="PETRMultiheadFlashAttention", embed_dims=EMBED, num_heads=4, dropout=0.1)],
        feedforward_channels=64, ffn_dropout=0.1, with_cp=False,
        operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"))
    head = dict(
        type="StreamPETRHead", num_classes=10, in_channels=EMBED, embed_dims=EMBED, num_query=16,
        memory_len=12, topk_proposals=4, num_propagated=4, with_dn=False, LID=True,
        position_range=POST_RANGE,
        transformer=dict(type="PETRTemporalTransformer", decoder=dict(
            type="PETRTransformerDecoder", return_intermediate=True, num_layers=2,
            transformerlayers=layer)),
        bbox_coder=_CODER, **_LOSSES)
    return dict(
        type="Petr3D", stride=16, img_backbone=dict(out_indices=(2, 3), **_BACKBONE),
        img_neck=dict(type="CPFPN", in_channels=[256, 512], out_channels=EMBED, num_outs=2),
        pts_bbox_head=head)


def make_frame(index: int, batch: int = 1) -> dict:
    """Frame ``index`` of a synthetic stream (six cameras, 64x176, new scene at 0)."""
    return synthetic_frame(index, batch, NUM_CAMS, (IMG_H, IMG_W))


def build_tiny(cfg: dict) -> torch.nn.Module:
    """Build ``cfg`` with seeded random weights, in eval mode."""
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


@pytest.fixture(scope="module")
def tiny_raydn() -> torch.nn.Module:
    return build_tiny(tiny_raydn_cfg())


@pytest.fixture(scope="module")
def tiny_streampetr() -> torch.nn.Module:
    return build_tiny(tiny_streampetr_cfg())


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    """Three frames of one scene, batch 1."""
    return [make_frame(i) for i in range(3)]


@pytest.fixture(scope="module")
def stream_b2() -> list[dict]:
    """Three frames of one scene, batch 2 (for the dynamic batch dimension)."""
    return [make_frame(i, batch=2) for i in range(3)]
