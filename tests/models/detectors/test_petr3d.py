"""Petr3D end to end on a tiny model: losses and gradients, predictions, streaming memory."""
from __future__ import annotations

import copy

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

DIMS, QUERIES, PROPAGATED = 32, 20, 4
B, N, H, W = 2, 2, 64, 176
PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
LAYER = dict(type='PETRTemporalDecoderLayer', attn_cfgs=[
    dict(type='MultiheadAttention', embed_dims=DIMS, num_heads=4, dropout=0.1),
    dict(type='PETRMultiheadFlashAttention', embed_dims=DIMS, num_heads=4, dropout=0.1)],
    feedforward_channels=64, ffn_dropout=0.1, with_cp=True,
    operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'))
MODEL = dict(
    type='Petr3D', use_grid_mask=True, num_frame_head_grads=1, num_frame_backbone_grads=1,
    num_frame_losses=1,
    img_backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(2, 3), frozen_stages=-1,
                      norm_cfg=dict(type='BN2d', requires_grad=False), norm_eval=True,
                      with_cp=False, style='pytorch'),
    img_neck=dict(type='CPFPN', in_channels=[256, 512], out_channels=DIMS, num_outs=2),
    img_roi_head=dict(type='FocalHead', num_classes=10, in_channels=DIMS, train_cfg=dict(
        assigner2d=dict(type='HungarianAssigner2D', cls_cost=dict(type='FocalLossCost', weight=2.),
                        reg_cost=dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                        iou_cost=dict(type='IoUCost', iou_mode='giou', weight=2.0),
                        centers2d_cost=dict(type='BBox3DL1Cost', weight=10.0)))),
    pts_bbox_head=dict(
        type='StreamPETRHead', num_classes=10, in_channels=DIMS, embed_dims=DIMS, num_query=QUERIES,
        memory_len=16, topk_proposals=4, num_propagated=PROPAGATED, scalar=2, noise_scale=1.0,
        split=0.75, LID=True, with_position=True, match_with_velo=False,
        position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(type='PETRTemporalTransformer', decoder=dict(
            type='PETRTransformerDecoder', return_intermediate=True, num_layers=2,
            transformerlayers=LAYER)),
        bbox_coder=dict(type='NMSFreeCoder', post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
                        pc_range=PC_RANGE, max_num=30, voxel_size=[0.2, 0.2, 8], num_classes=10),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=0.25), loss_iou=dict(type='GIoULoss', loss_weight=0.0)),
    train_cfg=dict(pts=dict(grid_size=[512, 512, 1], voxel_size=[0.2, 0.2, 8],
                            point_cloud_range=PC_RANGE, out_size_factor=4, assigner=dict(
        type='HungarianAssigner3D', cls_cost=dict(type='FocalLossCost', weight=2.0),
        reg_cost=dict(type='BBox3DL1Cost', weight=0.25), iou_cost=dict(type='IoUCost', weight=0.0),
        pc_range=PC_RANGE))))


def make_batch(prev_exists=(False, False), time: float = 0.0, counts=(3, 0)) -> dict:
    """A batch following docs/data_contract.md (two cameras looking forward / backward)."""
    g = torch.Generator().manual_seed(0)
    intrinsics = torch.eye(4).repeat(B, N, 1, 1)
    intrinsics[..., 0, 0] = intrinsics[..., 1, 1] = 100.0
    intrinsics[..., 0, 2], intrinsics[..., 1, 2] = W / 2, H / 2
    axes = torch.tensor([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    extrinsics = torch.stack([axes, axes @ torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]))])
    extrinsics = extrinsics.expand(B, N, 4, 4)
    batch = dict(img=torch.randn(B, N, 3, H, W, generator=g), lidar2img=intrinsics @ extrinsics,
                 intrinsics=intrinsics, extrinsics=extrinsics, ego_pose=torch.eye(4).repeat(B, 1, 1),
                 ego_pose_inv=torch.eye(4).repeat(B, 1, 1),
                 timestamp=torch.full((B,), time, dtype=torch.float64),
                 prev_exists=torch.tensor(prev_exists), img_shape=[(H, W)] * B, pad_shape=[(H, W)] * B)
    gt = dict(gt_bboxes_3d=[], gt_labels_3d=[], gt_bboxes=[], gt_labels=[], centers2d=[], depths=[])
    for m in counts:
        xyz = torch.rand(m, 3, generator=g) * torch.tensor([20.0, 10.0, 2.0]) + torch.tensor([5.0, -5.0, -1.0])
        gt['gt_bboxes_3d'].append(torch.cat([xyz, torch.rand(m, 3, generator=g) + 1,
                                             torch.rand(m, 3, generator=g)], 1))
        gt['gt_labels_3d'].append(torch.randint(0, 10, (m,), generator=g))
        gt['gt_bboxes'].append([torch.tensor([[10.0, 10.0, 50.0, 40.0]]).repeat(m, 1)] * N)
        gt['gt_labels'].append([gt['gt_labels_3d'][-1]] * N)
        gt['centers2d'].append([torch.tensor([[30.0, 25.0]]).repeat(m, 1)] * N)
        gt['depths'].append([torch.ones(m)] * N)
    batch.update(gt)
    return batch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(MODEL))


def _count_calls(module: torch.nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls = [0]
    handle = module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls, handle


def test_loss_mode_gives_finite_losses_and_backbone_gradients(model) -> None:
    model.train()
    model.reset_memory()
    model.zero_grad()
    grid_calls, handle = _count_calls(model.grid_mask)
    losses = model(make_batch(), mode='loss')
    handle.remove()
    assert {'loss_cls', 'loss_bbox', 'd0.loss_cls', 'dn_loss_cls', 'd0.dn_loss_bbox',
            'enc_loss_cls', 'enc_loss_iou', 'centers2d_losses', 'centerness_losses'} <= set(losses)
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert grid_calls[0] == 1
    for param in (model.img_backbone.conv1.weight, model.img_neck.fpn_convs[0].conv.weight,
                  model.img_roi_head.cls.weight, model.pts_bbox_head.position_encoder[0].weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert not model.pts_bbox_head.pseudo_reference_points.weight.requires_grad


def test_predict_mode_outputs_boxes_per_sample(model) -> None:
    model.eval()
    model.reset_memory()
    (roi_calls, roi_handle), (grid_calls, grid_handle) = (_count_calls(model.img_roi_head),
                                                          _count_calls(model.grid_mask))
    with torch.no_grad():
        results = model(make_batch(), mode='predict')
    roi_handle.remove()
    grid_handle.remove()
    assert len(results) == B and roi_calls[0] == 0 and grid_calls[0] == 0
    for result in results:
        assert set(result) == {'boxes_3d', 'scores_3d', 'labels_3d'}
        assert result['boxes_3d'].dim() == 2 and result['boxes_3d'].shape[1] == 9
        assert result['scores_3d'].shape == result['labels_3d'].shape == result['boxes_3d'].shape[:1]


def test_memory_streams_across_calls_and_resets_per_slot(model) -> None:
    model.eval()
    model.reset_memory()
    head = model.pts_bbox_head
    seen = []
    handle = head.register_forward_hook(lambda _m, _i, out: seen.append(out['reference_points'][:, QUERIES:]))
    with torch.no_grad():
        model(make_batch((False, False), 0.0), mode='predict')
        model(make_batch((True, False), 0.5), mode='predict')
    handle.remove()
    pseudo = head.pseudo_reference_points.weight
    assert torch.allclose(seen[0], pseudo.expand(B, -1, -1))
    assert not torch.allclose(seen[1][0], pseudo)  # slot 0 continues its scene: propagated queries
    assert torch.allclose(seen[1][1], pseudo)  # slot 1 starts a new scene
    model.reset_memory()
    assert head.memory.is_empty


@pytest.mark.parametrize("override, message", [
    (dict(num_frame_losses=2), "one frame"),
    (dict(num_frame_backbone_grads=2), "one frame"),
    (dict(pretrained='torchvision://resnet18'), "pretrained"),
    (dict(test_cfg=dict(pts=dict(max_per_img=300))), "test_cfg"),
    (dict(train_cfg=dict(pts=dict(), img=dict())), "train_cfg"),
])
def test_unsupported_arguments_raise(override, message) -> None:
    cfg = copy.deepcopy(MODEL)
    cfg.update(override)
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)


def test_bad_mode_and_missing_keys_raise(model) -> None:
    batch = make_batch()
    with pytest.raises(ValueError, match="mode"):
        model(batch, mode='tensor')
    del batch['ego_pose_inv']
    with pytest.raises(KeyError, match="ego_pose_inv"):
        model(batch, mode='predict')


# ---------------------------------------------------------------- label-scarce training
def deterministic_model() -> torch.nn.Module:
    """The tiny model without dropout and grid mask: its losses depend only on the seed."""
    cfg = copy.deepcopy(MODEL)
    cfg['use_grid_mask'] = False
    layer = cfg['pts_bbox_head']['transformer']['decoder']['transformerlayers']
    for attn in layer['attn_cfgs']:
        attn['dropout'] = 0.0
    layer['ffn_dropout'] = 0.0
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def seeded_losses(model: torch.nn.Module, batch: dict) -> dict:
    torch.manual_seed(1)
    return model(batch, mode='loss')


def test_unlabelled_sample_adds_nothing_to_the_losses() -> None:
    model = deterministic_model()
    alone_model, background_model = copy.deepcopy(model), copy.deepcopy(model)
    batch = make_batch(counts=(3, 0))  # sample 1: empty GT, as the dataset gives an unlabelled frame
    mixed = seeded_losses(model, dict(batch, gt_labelled=torch.tensor([True, False])))
    alone = seeded_losses(alone_model, {k: v[:1] for k, v in batch.items()})
    assert set(mixed) == set(alone)
    for key in mixed:
        torch.testing.assert_close(mixed[key], alone[key], rtol=1e-6, atol=1e-6, msg=key)
    # Without the flag the empty sample is "background everywhere": different set losses.
    assert not torch.allclose(seeded_losses(background_model, batch)['loss_cls'], alone['loss_cls'])


def test_all_unlabelled_batch_gives_graph_zeros_and_pseudo_label_dn_losses() -> None:
    model = deterministic_model()
    labelled_keys = set(seeded_losses(copy.deepcopy(model), make_batch()))
    pseudo = make_batch(counts=(3, 1))
    batch = dict(make_batch(counts=(0, 0)), gt_labelled=torch.tensor([False, False]),
                 pseudo_bboxes_3d=pseudo['gt_bboxes_3d'], pseudo_labels_3d=pseudo['gt_labels_3d'])
    losses = seeded_losses(model, batch)
    assert set(losses) == labelled_keys
    for key, value in losses.items():
        assert value.grad_fn is not None, key
        assert (value > 0) if 'dn_loss' in key else (value == 0), key
    model.zero_grad()
    sum(losses.values()).backward()
    assert model.pts_bbox_head.position_encoder[0].weight.grad.abs().sum() > 0  # through the DN losses
    assert model.img_roi_head.cls.weight.grad is not None


def test_flag_all_true_is_the_batch_without_the_flag() -> None:
    model = deterministic_model()
    without = seeded_losses(copy.deepcopy(model), make_batch())
    with_flag = seeded_losses(model, dict(make_batch(), gt_labelled=torch.tensor([True, True])))
    assert set(with_flag) == set(without)
    assert all(torch.equal(with_flag[key], without[key]) for key in without)


def test_unlabelled_sample_with_ground_truth_raises() -> None:
    batch = dict(make_batch(counts=(3, 0)), gt_labelled=torch.tensor([False, True]))
    with pytest.raises(ValueError, match="gt_labelled=False but carry gt_bboxes_3d"):
        deterministic_model()(batch, mode='loss')


def test_first_frame_gradient_at_initialisation_is_not_a_spike():
    # See sparse_query_head.py: queries without content on a scene's first frame.
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(MODEL))
    model.train()
    norms = []
    for frame in range(3):
        losses = model(make_batch(prev_exists=(frame > 0, frame > 0), time=0.5 * frame), mode="loss")
        model.zero_grad()
        sum(value for key, value in losses.items() if "loss" in key).backward()
        norms.append(float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm()))
    assert norms[0] < 5 * max(norms[1:]), norms
