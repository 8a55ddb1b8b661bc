"""The RayDN configs (R50 60e, R34 / R18 24e): upstream keys and values, pinned state dicts."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine import Config

from projects.mmdet3d_plugin.engine.runtime_config import LoadFromSpec, parse_runtime
from projects.mmdet3d_plugin.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
KEYS = Path(__file__).parent / "keys"
R50 = "raydn_r50_704_bs2_seq_428q_nui_60e"
R34 = "raydn_r34_704_bs2_seq_428q_nui_24e"
R18 = "raydn_r18_704_bs2_seq_428q_nui_24e"
LAYER = "pts_bbox_head.transformer.decoder.layers"


def _config(name: str) -> Config:
    return Config.fromfile(str(ROOT / "projects/configs/RayDN" / f"{name}.py"))


def _pinned(name: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in (KEYS / f"{name}.txt").read_text().splitlines():
        if not line.startswith("#"):
            key, shape = line.split(" ")
            shapes[key] = tuple(int(s) for s in shape.strip("[]").split(",") if s)
    return shapes


@pytest.mark.parametrize("name, gpus, batch, epochs", [(R50, 8, 2, 60), (R34, 4, 4, 24), (R18, 4, 4, 24)])
def test_top_level_keys_and_schedule(name, gpus, batch, epochs) -> None:
    cfg = _config(name)
    for key in ("model", "data", "optimizer", "optimizer_config", "lr_config", "runner", "fp16",
                "checkpoint_config", "log_config", "evaluation", "load_from", "resume_from",
                "num_iters_per_epoch", "point_cloud_range", "class_names", "train_pipeline", "test_pipeline"):
        assert key in cfg, key
    assert (cfg.num_gpus, cfg.batch_size, cfg.num_epochs, cfg.data.samples_per_gpu) == (gpus, batch, epochs, batch)
    iters = 28130 // (gpus * batch)
    assert cfg.num_iters_per_epoch == iters
    assert cfg.runner == dict(type="IterBasedRunner", max_iters=epochs * iters)
    assert cfg.checkpoint_config.interval == iters and cfg.evaluation.interval == epochs * iters
    assert cfg.optimizer.type == "AdamW" and cfg.optimizer.lr == 4e-4 and cfg.optimizer.weight_decay == 0.01
    assert cfg.optimizer.paramwise_cfg.custom_keys["img_backbone"] == dict(lr_mult=0.25)
    assert cfg.optimizer_config.grad_clip == dict(max_norm=35, norm_type=2)
    assert cfg.lr_config == dict(policy="CosineAnnealing", warmup="linear", warmup_iters=500,
                                 warmup_ratio=1.0 / 3, min_lr_ratio=1e-3)
    assert cfg.data.train.type == "CustomNuScenesDataset" and cfg.data.train.seq_mode
    assert cfg.data.shuffler_sampler.type == "InfiniteGroupEachSampleInBatchSampler"
    assert [t["type"] for t in cfg.train_pipeline][:5] == [
        "LoadMultiViewImageFromFiles", "LoadAnnotations3D", "ObjectRangeFilter", "ObjectNameFilter",
        "ResizeCropFlipRotImage"]


def test_backbones_and_inits() -> None:
    r50, r34, r18 = _config(R50), _config(R34), _config(R18)
    assert r50.model.img_backbone.depth == 50 and r50.model.img_neck.in_channels == [256, 512, 1024, 2048]
    assert "nuim" in r50.model.img_backbone.init_cfg.checkpoint and "nuim" in r50.load_from
    for cfg, depth in ((r34, 34), (r18, 18)):
        assert cfg.model.img_backbone.depth == depth
        assert cfg.model.img_backbone.init_cfg == dict(type="Pretrained", checkpoint=f"torchvision://resnet{depth}")
        assert cfg.model.img_neck.in_channels == [64, 128, 256, 512]
        assert cfg.model.pts_bbox_head == r50.model.pts_bbox_head
    head = r50.model.pts_bbox_head
    assert (head.num_query, head.memory_len, head.topk_proposals, head.num_propagated) == (300, 512, 128, 128)
    assert (head.scalar, head.raydn_group, head.raydn_num, head.raydn_alpha, head.raydn_beta) == (10, 1, 5, 8, 2)
    assert r50.model.img_roi_head.type == "YOLOXHeadCustom"


@pytest.mark.parametrize("name", [R34, R18])
def test_students_load_the_r50_nuimages_file_non_strictly_as_released(name) -> None:
    """HarmoDistill-BEV's RayDN/raydn_r18 (and r34) config: ``load_from`` the remapped nuImages
    Cascade Mask R-CNN file, which mmcv's runner loads with ``strict=False`` after the
    ImageNet backbone init; the R50 config loads it the same way (the file has no heads)."""
    spec = parse_runtime(_config(name)).load_from
    assert spec == LoadFromSpec("ckpts/cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim-remapped.pth", strict=False)
    assert parse_runtime(_config(R50)).load_from.strict is False  # upstream: the file has no heads
    assert parse_runtime(_with_no_load_from(name)).load_from is None


def _with_no_load_from(name: str) -> Config:
    """The documented switch to ImageNet alone: ``--cfg-options load_from=None``."""
    cfg = _config(name)
    cfg.merge_from_dict({"load_from": None})
    return cfg


@pytest.mark.parametrize("depth", [18, 34])
def test_distilled_students_start_from_imagenet_alone_as_released(depth) -> None:
    """Upstream distills with a student config whose load_from is commented out."""
    for suffix in ("_released", ""):
        cfg = Config.fromfile(str(ROOT / f"projects/configs/Distill3D/distill_raydn_r50_r{depth}{suffix}.py"))
        assert parse_runtime(cfg).load_from is None


@pytest.fixture(scope="module")
def r50_model():
    torch.manual_seed(0)
    return MODELS.build(_config(R50).model)


def _assert_matches_pinned(model, name: str) -> None:
    pinned = _pinned(name)
    actual = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert sorted(set(pinned) - set(actual)) == [] and sorted(set(actual) - set(pinned)) == []
    assert {k: v for k, v in actual.items() if pinned[k] != v} == {}


def test_r50_state_dict_matches_pinned_keys(r50_model) -> None:
    _assert_matches_pinned(r50_model, R50)
    shapes = _pinned(R50)
    for i in range(6):
        assert shapes[f"{LAYER}.{i}.attentions.1.learnable_fc.weight"] == (39, 256)
        assert shapes[f"{LAYER}.{i}.attentions.1.weights_fc.weight"] == (416, 256)
        assert shapes[f"{LAYER}.{i}.attentions.1.cam_embed.0.weight"] == (128, 12)
        assert shapes[f"{LAYER}.{i}.ffns.0.layers.0.0.weight"] == (1024, 256)
        assert shapes[f"pts_bbox_head.cls_branches.{i}.6.weight"] == (10, 256)
    assert shapes["pts_bbox_head.pseudo_reference_points.weight"] == (128, 3)
    assert shapes["img_backbone.layer1.0.conv1.weight"] == (64, 64, 1, 1)
    assert "img_roi_head.multi_level_cls_convs.3.1.bn.running_var" in shapes


def test_r50_strict_load_of_six_identical_branch_copies(r50_model) -> None:
    state = {k: v.clone() for k, v in r50_model.state_dict().items()}
    branch = "pts_bbox_head.cls_branches.{}.6.bias"
    new_bias = torch.full_like(state[branch.format(0)], -3.0)
    for i in range(6):
        state[branch.format(i)] = new_bias.clone()
    r50_model.load_state_dict(state, strict=True)
    assert all(torch.equal(r50_model.pts_bbox_head.cls_branches[i][6].bias, new_bias) for i in range(6))


@pytest.mark.parametrize("name", [R34, R18])
def test_student_state_dicts_match_pinned_keys(name) -> None:
    _assert_matches_pinned(MODELS.build(_config(name).model), name)
