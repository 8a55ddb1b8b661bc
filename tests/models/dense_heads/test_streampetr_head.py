"""StreamPETRHead: outputs, losses, memory propagation, saved constants and tied branches."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.models.utils.misc import locations
from projects.mmdet3d_plugin.registry import MODELS

DIMS, QUERIES, MEMORY, TOPK, PROPAGATED, LAYERS = 32, 20, 16, 4, 4, 2
PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
B, N, H, W, STRIDE = 2, 2, 4, 11, 16


def head_cfg(**overrides) -> dict:
    """A tiny StreamPETRHead config with the upstream structure."""
    layer = dict(type='PETRTemporalDecoderLayer', attn_cfgs=[
        dict(type='MultiheadAttention', embed_dims=DIMS, num_heads=4, dropout=0.0),
        dict(type='PETRMultiheadFlashAttention', embed_dims=DIMS, num_heads=4, dropout=0.0)],
        feedforward_channels=64, ffn_dropout=0.0, with_cp=False,
        operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'))
    cfg = dict(
        type='StreamPETRHead', num_classes=10, in_channels=DIMS, embed_dims=DIMS, num_query=QUERIES,
        memory_len=MEMORY, topk_proposals=TOPK, num_propagated=PROPAGATED, scalar=3, noise_scale=1.0,
        split=0.75, LID=True, with_position=True, match_with_velo=False,
        position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        code_weights=[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        transformer=dict(type='PETRTemporalTransformer', decoder=dict(
            type='PETRTransformerDecoder', return_intermediate=True, num_layers=LAYERS,
            transformerlayers=layer)),
        bbox_coder=dict(type='NMSFreeCoder', post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
                        pc_range=PC_RANGE, max_num=25, voxel_size=[0.2, 0.2, 8], num_classes=10),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=0.25),
        loss_iou=dict(type='GIoULoss', loss_weight=0.0),
        train_cfg=dict(assigner=dict(
            type='HungarianAssigner3D', cls_cost=dict(type='FocalLossCost', weight=2.0),
            reg_cost=dict(type='BBox3DL1Cost', weight=0.25), iou_cost=dict(type='IoUCost', weight=0.0),
            pc_range=PC_RANGE)))
    cfg.update(overrides)
    return cfg


def _cameras() -> tuple[torch.Tensor, torch.Tensor]:
    """Intrinsics and lidar2img of N cameras looking outwards around the car."""
    intrinsics = torch.eye(4).repeat(B, N, 1, 1)
    intrinsics[..., 0, 0] = intrinsics[..., 1, 1] = 100.0
    intrinsics[..., 0, 2], intrinsics[..., 1, 2] = W * STRIDE / 2, H * STRIDE / 2
    axes = torch.tensor([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    lidar2cam = []
    for cam in range(N):
        yaw = 2 * math.pi * cam / N
        rot = torch.eye(4)
        rot[:2, :2] = torch.tensor([[math.cos(yaw), math.sin(yaw)], [-math.sin(yaw), math.cos(yaw)]])
        lidar2cam.append(axes @ rot)
    return intrinsics, intrinsics @ torch.stack(lidar2cam)


def head_inputs(prev_exists: bool = False, time: float = 0.0, ego_pose=None) -> dict:
    torch.manual_seed(1)
    intrinsics, lidar2img = _cameras()
    feats = torch.randn(B, N, DIMS, H, W)
    ego_pose = torch.eye(4).repeat(B, 1, 1) if ego_pose is None else ego_pose
    return dict(img_feats=feats,
                locations=locations(feats.flatten(0, 1), STRIDE, H * STRIDE, W * STRIDE)[None].expand(B * N, -1, -1, -1),
                lidar2img=lidar2img, intrinsics=intrinsics, ego_pose=ego_pose,
                ego_pose_inv=torch.linalg.inv(ego_pose), timestamp=torch.full((B,), time, dtype=torch.float64),
                prev_exists=torch.full((B,), prev_exists), pad_shape=(H * STRIDE, W * STRIDE))


def gt(counts=(3, 0)) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    boxes = [torch.cat([torch.rand(m, 3, generator=g) * 20 - 10, torch.rand(m, 3, generator=g) + 1,
                        torch.rand(m, 3, generator=g)], 1) for m in counts]
    return boxes, [torch.randint(0, 10, (m,), generator=g) for m in counts]


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    return MODELS.build(head_cfg())


def test_training_forward_losses_are_finite_and_named(head) -> None:
    head.train()
    head.reset_memory()
    boxes, labels = gt((3, 0))
    outs = head(**head_inputs(), gt_bboxes_3d=boxes, gt_labels_3d=labels)
    assert outs['all_cls_scores'].shape == (LAYERS, B, QUERIES + PROPAGATED, 10)
    assert outs['all_bbox_preds'].shape == (LAYERS, B, QUERIES + PROPAGATED, 10)
    assert outs['dn'].pad_size == 3 * 3 and outs['dn_cls_scores'].shape == (LAYERS, B, 9, 10)
    losses = head.loss(boxes, labels, outs)
    names = {'loss_cls', 'loss_bbox', 'd0.loss_cls', 'd0.loss_bbox',
             'dn_loss_cls', 'dn_loss_bbox', 'd0.dn_loss_cls', 'd0.dn_loss_bbox'}
    assert set(losses) == names
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert head.reference_points.weight.grad is not None
    assert head.cls_branches[0][0].weight.grad.abs().sum() > 0


def test_losses_finite_without_any_gt(head) -> None:
    head.train()
    head.reset_memory()
    boxes, labels = gt((0, 0))
    outs = head(**head_inputs(), gt_bboxes_3d=boxes, gt_labels_3d=labels)
    assert outs['dn'] is None
    losses = head.loss(boxes, labels, outs)
    assert all(torch.isfinite(v) for v in losses.values())
    values = {name: loss.item() for name, loss in losses.items()}
    assert values['dn_loss_cls'] == 0.0 and values['loss_bbox'] == 0.0 and values['loss_cls'] > 0.0


def test_second_frame_propagates_top_queries(head) -> None:
    head.eval()
    head.reset_memory()
    with torch.no_grad():
        first = head(**head_inputs(prev_exists=False, time=1.0))
        second = head(**head_inputs(prev_exists=True, time=1.5))
    scores = first['all_cls_scores'][-1].sigmoid().max(-1).values
    top = scores.topk(TOPK, dim=1).indices[:, :PROPAGATED]
    centers = torch.stack([first['all_bbox_preds'][-1, b, top[b], :3] for b in range(B)])
    pc = torch.tensor(PC_RANGE)
    expected = (centers - pc[:3]) / (pc[3:] - pc[:3])
    assert torch.allclose(second['reference_points'][:, QUERIES:], expected, atol=1e-5)
    stored = head.memory.timestamp[:, :2 * TOPK, 0]  # between frames: -(time of the push)
    assert torch.equal(stored, torch.tensor([-1.5] * TOPK + [-1.0] * TOPK, dtype=torch.float64).expand(B, -1))


def test_new_scene_restarts_from_pseudo_reference_points(head) -> None:
    head.eval()
    head.reset_memory()
    with torch.no_grad():
        head(**head_inputs(prev_exists=False))
        restarted = head(**head_inputs(prev_exists=False, time=3.0))
    pseudo = head.pseudo_reference_points.weight.expand(B, -1, -1)
    assert torch.allclose(restarted['reference_points'][:, QUERIES:], pseudo, atol=1e-6)


def test_predict_decodes_boxes(head) -> None:
    head.eval()
    head.reset_memory()
    with torch.no_grad():
        results = head.predict(head(**head_inputs()))
    assert len(results) == B
    for result in results:
        assert result['boxes_3d'].shape[1] == 9 and result['boxes_3d'].shape[0] <= 25
        assert result['scores_3d'].shape == result['labels_3d'].shape
        assert result['labels_3d'].dtype == torch.int64


def test_saved_constants_are_checked_buffers(head) -> None:
    constants = {'code_weights', 'match_costs', 'pc_range', 'position_range', 'coords_d',
                 'pseudo_reference_points.weight'}
    params = {name for name, _ in head.named_parameters()}
    assert constants <= set(head.state_dict()) and not constants & params
    assert head.coords_d.shape == (64,)
    assert head.coords_d[1].item() == pytest.approx(1 + (61.2 - 1) / (64 * 65) * 2)
    state = head.state_dict()
    state['pseudo_reference_points.weight'] = torch.rand(PROPAGATED, 3)
    fresh = MODELS.build(head_cfg())
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.pseudo_reference_points.weight, state['pseudo_reference_points.weight'])
    state['code_weights'] = torch.ones(10)
    with pytest.raises(ValueError, match="code_weights"):
        fresh.load_state_dict(state)


def test_branches_are_tied_and_copies_must_agree(head) -> None:
    assert head.cls_branches[0] is head.cls_branches[1] and head.reg_branches[0] is head.reg_branches[1]
    state = head.state_dict()
    assert torch.equal(state['cls_branches.0.0.weight'], state['cls_branches.1.0.weight'])
    fresh = MODELS.build(head_cfg())
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.reg_branches[1][0].weight, head.reg_branches[0][0].weight)
    state['reg_branches.1.2.bias'] = state['reg_branches.1.2.bias'] + 1.0
    with pytest.raises(ValueError, match="reg_branches"):
        fresh.load_state_dict(state)


def test_recordable_points_are_the_values_the_forward_uses(head, record_calls) -> None:
    head.train()
    head.reset_memory()
    tokens, references, codes = (record_calls(head, name) for name in
                                 ('token_points', 'query_reference_points', 'box_codes'))
    boxes, labels = gt((3, 0))
    with torch.no_grad():
        outs = head(**head_inputs(), gt_bboxes_3d=boxes, gt_labels_3d=labels)
    pad = outs['dn'].pad_size
    assert len(tokens) == 1 and tokens[0][1].shape == (B, N * H * W, 64, 3)
    assert len(references) == 1 and references[0][1].shape == (B, pad + QUERIES + PROPAGATED, 3)
    assert torch.equal(references[0][1][:, pad:], outs['reference_points'])
    assert [args[0] for args, _ in codes] == list(range(LAYERS))
    assert torch.equal(torch.stack([out for _, out in codes]),
                       torch.cat([outs['dn_bbox_preds'], outs['all_bbox_preds']], dim=2))
    assert not hasattr(head, 'bbox_preds_probe') and not hasattr(head, 'token_points_probe')


def test_unsupported_settings_raise() -> None:
    with pytest.raises(ValueError, match="with_position"):
        MODELS.build(head_cfg(with_position=False))
    with pytest.raises(ValueError, match="loss_iou"):
        MODELS.build(head_cfg(loss_iou=dict(type='GIoULoss', loss_weight=2.0)))
    with pytest.raises(ValueError, match="train_cfg"):
        MODELS.build(head_cfg(train_cfg=dict(assigner=None, asigner=None)))


def test_frustum_points_lie_on_the_camera_rays() -> None:
    from projects.mmdet3d_plugin.models.dense_heads.petr_position import frustum_points

    _, lidar2img = _cameras()
    locs = torch.tensor([0.3, 0.6]).expand(B * N, 1, 1, 2)
    rng = torch.tensor([-61.2, -61.2, -10.0, 61.2, 61.2, 10.0])
    points = frustum_points(locs, (64, 176), torch.tensor([5.0, 20.0]), lidar2img, rng)
    assert points.shape == (B, N, 2, 3)
    metric = points * (rng[3:] - rng[:3]) + rng[:3]
    homogeneous = torch.cat([metric, torch.ones(B, N, 2, 1)], dim=-1)
    pixels = torch.einsum('bnij,bndj->bndi', lidar2img, homogeneous)
    assert torch.allclose(pixels[..., 2], torch.tensor([5.0, 20.0]).expand(B, N, 2), atol=1e-3)
    uv = pixels[..., :2] / pixels[..., 2:3]
    assert torch.allclose(uv, torch.tensor([0.3 * 176, 0.6 * 64]).expand(B, N, 2, 2), atol=1e-2)


def test_geometry_and_memory_stay_float32_under_autocast(head) -> None:
    head.eval()
    head.reset_memory()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        outs = head(**head_inputs())
        head(**head_inputs(prev_exists=True, time=0.5))
    assert torch.isfinite(outs['all_bbox_preds'].float()).all()
    assert head.memory.reference_point.dtype == torch.float32
    assert head.memory.embedding.dtype == torch.float32
    assert head.memory.timestamp.dtype == torch.float64
