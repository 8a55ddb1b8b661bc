"""The LiDAR depth distillation config (synthetic/distill_raydn_r50_r18_depth_synthetic.py):
depth maps in the training pipeline only, a depth loss on a tapped student level, a few engine
steps on the generated world, and a plain student export."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from projects.mmdet3d_plugin.core import batch_contract as contract
from projects.mmdet3d_plugin.core.checkpoint import read_checkpoint
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv
from projects.mmdet3d_plugin.kd.distillers.detector_configs import load_detector_config
from projects.mmdet3d_plugin.kd.student_conversion import convert_distiller_checkpoint
from projects.mmdet3d_plugin.paths import REPO_ROOT
from projects.mmdet3d_plugin.registry import DATASETS, MODELS

CONFIG = REPO_ROOT / "projects" / "configs" / "synthetic" / "distill_raydn_r50_r18_depth_synthetic.py"
TINY = "tests/kd/configs/tiny_raydn.py"  # 6 cameras, 32-channel FPN


def step_types(pipeline: list[Any]) -> list[str]:
    """The ``type`` of every step, the inner steps of wrappers included."""
    return [t for step in pipeline for t in [step["type"], *step_types(step.get("transforms", []))]]


def test_depth_maps_are_made_in_training_only_and_feed_a_tapped_student_level() -> None:
    cfg = load_config(CONFIG)
    types = step_types(cfg.data.train.pipeline)
    assert types.index("LoadLidarDepthMaps") == types.index("ResizeCropFlipRotImage") + 1
    assert "depth_maps" in cfg.data.train.pipeline[-1]["keys"] and "depth_maps" in cfg.data.train.collect_keys
    for split in ("val", "test"):
        assert "LoadLidarDepthMaps" not in step_types(cfg.data[split].pipeline)
    loss = cfg.model.distill_losses.lidar_depth
    assert loss.type == "LidarDepthLoss" and loss.label_type == "gaussian"
    assert loss.inputs == dict(student="s_fpn_1", depth_maps="batch.depth_maps")
    assert cfg.model.taps.s_fpn_1 == dict(model="student", path="img_neck.fpn_convs.1.conv")
    student = load_detector_config(cfg.model.student_cfg, "student")
    assert loss.in_channels == student.model["img_neck"]["out_channels"]
    assert cfg.model.distill_losses.keys() - {"lidar_depth"} == load_config(
        CONFIG.with_name("distill_raydn_r50_r18_synthetic.py")).model.distill_losses.keys()


def tiny_depth_config(world: Path, infos: dict[str, Path], teacher_ckpt: Path) -> Any:
    """The config with the tiny RayDN pair, only the depth loss, 2 steps, the test world."""
    cfg = load_config(CONFIG, {
        "model.teacher_cfg": TINY, "model.student_cfg": TINY, "model.teacher_ckpt": str(teacher_ckpt),
        "model.enabled_losses": ["lidar_depth"], "model.inherit": [],
        "model.distill_losses.lidar_depth.in_channels": 32,
        **{f"data.{split}.{key}": str(value) for split in ("train", "val", "test")
           for key, value in (("ann_file", infos["train" if split == "train" else "val"]), ("data_root", world))},
        "data.workers_per_gpu": 0, "runner.max_iters": 2, "lr_config.warmup_iters": 1,
        "evaluation.interval": 0, "checkpoint_config.interval": 2, "log_config.interval": 1})
    for step in cfg.data.train.pipeline:  # the test world's images are 400 x 225
        if step["type"] == "ResizeCropFlipRotImage":
            step["data_aug_conf"] = dict(step["data_aug_conf"], H=225, W=400, resize_lim=(0.64, 0.72))
    return cfg


def test_the_shipped_training_pipeline_gives_depth_maps_on_the_generated_world() -> None:
    cfg = load_config(CONFIG)
    root = REPO_ROOT / cfg.data.train.data_root
    if not (root / Path(cfg.data.train.ann_file).name).is_file():
        pytest.skip(f"no generated world at {root} (tools/create_synthetic_nuscenes.py makes one)")
    cfg.merge_from_dict({"data.train.data_root": str(root),
                         "data.train.ann_file": str(root / Path(cfg.data.train.ann_file).name)})
    depth = DATASETS.build(cfg.data.train)[0]["depth_maps"]
    assert depth.dtype == torch.float32 and depth.shape == (6, 96 // 16, 256 // 16)
    assert ((depth > 0).flatten(1).sum(1) > 0).all() and depth.max() <= 70.5


def test_training_batches_carry_depth_and_the_engine_trains_and_exports(
        synthetic_world: Path, synthetic_infos: dict[str, Path], config_teacher_ckpt: Path,
        tmp_path: Path) -> None:
    cfg = tiny_depth_config(synthetic_world, synthetic_infos, config_teacher_ckpt)
    batch = collate_samples([DATASETS.build(cfg.data.train)[0]])
    contract.check_batch(batch)
    assert batch["depth_maps"].shape == (1, 6, 96 // 16, 256 // 16)
    assert (batch["depth_maps"] > 0).sum() >= 6 and batch["depth_maps"].max() <= 70.5

    train(cfg, tmp_path / "work", env=LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1),
          enable_progress_bar=False)
    state = read_checkpoint(tmp_path / "work" / "latest.pth")["state_dict"]
    head = sorted(key for key in state if key.startswith("distill_losses.lidar_depth.head."))
    assert len(head) == 8

    report = convert_distiller_checkpoint(tmp_path / "work" / "latest.pth", tmp_path / "student.pth", cfg=cfg)
    assert report.dropped["distill_losses"] == len(head) and report.dropped["other"] == 0
    student = MODELS.build(load_config(REPO_ROOT / TINY).model)
    student.load_state_dict(read_checkpoint(tmp_path / "student.pth")["state_dict"], strict=True)
    assert not any("depth" in key for key in student.state_dict())
    torch.testing.assert_close(student.state_dict()["img_neck.fpn_convs.1.conv.weight"],
                               state["student.img_neck.fpn_convs.1.conv.weight"])
