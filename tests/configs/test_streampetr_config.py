"""The StreamPETR R50 428q config: upstream keys and values, and the pinned model state dict."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine import Config

from projects.mmdet3d_plugin.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'projects/configs/StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py'
PINNED = Path(__file__).parent / 'keys' / 'stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.txt'


def _pinned() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in PINNED.read_text().splitlines():
        if line.startswith('#'):
            continue
        key, shape = line.split(' ')
        shapes[key] = tuple(int(s) for s in shape.strip('[]').split(',') if s)
    return shapes


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config.fromfile(str(CONFIG))


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_top_level_keys_and_schedule(cfg) -> None:
    for key in ('model', 'data', 'optimizer', 'optimizer_config', 'lr_config', 'runner', 'fp16',
                'checkpoint_config', 'log_config', 'evaluation', 'load_from', 'resume_from',
                'num_gpus', 'batch_size', 'num_epochs', 'num_iters_per_epoch', 'point_cloud_range',
                'class_names', 'train_pipeline', 'test_pipeline'):
        assert key in cfg, key
    assert (cfg.num_gpus, cfg.batch_size, cfg.num_epochs) == (8, 2, 60)
    assert cfg.num_iters_per_epoch == 28130 // 16
    assert cfg.runner == dict(type='IterBasedRunner', max_iters=60 * (28130 // 16))
    assert cfg.optimizer.type == 'AdamW' and cfg.optimizer.lr == 4e-4
    assert cfg.optimizer.weight_decay == 0.01
    assert cfg.optimizer.paramwise_cfg.custom_keys['img_backbone'] == dict(lr_mult=0.1)
    assert cfg.optimizer_config.grad_clip == dict(max_norm=35, norm_type=2)
    assert cfg.lr_config == dict(policy='CosineAnnealing', warmup='linear', warmup_iters=500,
                                 warmup_ratio=1.0 / 3, min_lr_ratio=1e-3)
    assert cfg.checkpoint_config.interval == cfg.num_iters_per_epoch


def test_data_pipeline_and_head_values(cfg) -> None:
    train = cfg.data.train
    assert train.type == 'CustomNuScenesDataset' and train.seq_split_num == 2 and train.seq_mode
    assert train.queue_length == 1 and cfg.data.samples_per_gpu == 2
    # upstream (exiawsh/StreamPETR at 414f4e6): boxes with any LiDAR or radar point, no frame dropped
    assert train.use_valid_flag is True and train.filter_empty_gt is False
    assert cfg.data.shuffler_sampler.type == 'InfiniteGroupEachSampleInBatchSampler'
    assert cfg.data.nonshuffler_sampler.type == 'DistributedSampler'
    assert [t['type'] for t in cfg.train_pipeline] == [
        'LoadMultiViewImageFromFiles', 'LoadAnnotations3D', 'ObjectRangeFilter', 'ObjectNameFilter',
        'ResizeCropFlipRotImage', 'GlobalRotScaleTransImage', 'NormalizeMultiviewImage',
        'PadMultiViewImage', 'PETRFormatBundle3D', 'Collect3D']
    assert cfg.test_pipeline[-1]['type'] == 'MultiScaleFlipAug3D'
    head = cfg.model.pts_bbox_head
    assert (head.num_query, head.memory_len, head.topk_proposals, head.num_propagated) == (300, 512, 128, 128)
    assert (head.scalar, head.noise_scale, head.split) == (10, 1.0, 0.75)
    assert head.loss_cls.loss_weight == 2.0 and head.loss_bbox.loss_weight == 0.25
    assert head.transformer.decoder.num_layers == 6


def test_model_state_dict_matches_pinned_keys_and_shapes(model) -> None:
    pinned = _pinned()
    actual = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert sorted(set(pinned) - set(actual)) == [] and sorted(set(actual) - set(pinned)) == []
    assert {k: v for k, v in actual.items() if pinned[k] != v} == {}
    assert actual['pts_bbox_head.transformer.decoder.layers.5.attentions.0.attn.in_proj_weight'] == (768, 256)
    assert actual['pts_bbox_head.transformer.decoder.layers.0.ffns.0.layers.0.0.weight'] == (2048, 256)
    assert actual['pts_bbox_head.pseudo_reference_points.weight'] == (128, 3)
    assert {f'img_backbone.layer{i}.0.conv1.weight' for i in range(1, 5)} <= set(actual)


def test_strict_load_accepts_identical_branch_copies_only(model) -> None:
    state = {key: value.clone() for key, value in model.state_dict().items()}
    for prefix in ('pts_bbox_head.cls_branches', 'pts_bbox_head.reg_branches'):
        assert torch.equal(state[f'{prefix}.0.0.weight'], state[f'{prefix}.5.0.weight'])
    state['pts_bbox_head.pseudo_reference_points.weight'] = torch.rand(128, 3)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.pts_bbox_head.pseudo_reference_points.weight,
                       state['pts_bbox_head.pseudo_reference_points.weight'])
    bad = dict(state)
    bad['pts_bbox_head.cls_branches.3.6.bias'] = bad['pts_bbox_head.cls_branches.3.6.bias'] + 0.5
    with pytest.raises(ValueError, match="cls_branches.3.6.bias"):
        model.load_state_dict(bad, strict=True)
    bad = dict(state)
    bad['pts_bbox_head.position_range'] = torch.tensor([-65.0, -65.0, -8.0, 65.0, 65.0, 8.0])
    with pytest.raises(ValueError, match="position_range"):
        model.load_state_dict(bad, strict=True)


def test_constants_are_never_trained(model) -> None:
    params = {name for name, _ in model.named_parameters()}
    for name in ('code_weights', 'match_costs', 'pc_range', 'position_range', 'coords_d',
                 'pseudo_reference_points.weight'):
        assert f'pts_bbox_head.{name}' not in params
    head = model.pts_bbox_head
    assert head.code_weights.tolist() == [2.0, 2.0] + [1.0] * 8
    assert torch.equal(head.match_costs, head.code_weights)
    assert head.coords_d[-1].item() == pytest.approx(1 + (61.2 - 1) / (64 * 65) * 63 * 64)
