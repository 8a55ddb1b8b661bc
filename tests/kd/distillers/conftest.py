"""Tiny teacher / student detectors, their checkpoints and batches for the distiller tests."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch
from mmengine.config import Config

from projects.mmdet3d_plugin.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
IMG_H, IMG_W = 64, 176


def _set_embed_dims(model: dict, dims: int) -> None:
    """Every channel count of the tiny RayDN config set to ``dims``."""
    model["img_neck"]["out_channels"] = dims
    head = model["pts_bbox_head"]
    head["in_channels"] = head["embed_dims"] = dims
    decoder = head["transformer"]["decoder"]
    decoder["embed_dims"] = dims
    for attn in decoder["transformerlayers"]["attn_cfgs"]:
        attn["embed_dims"] = dims


def tiny_raydn(num_cams: int = 2, embed_dims: int = 32, num_classes: int = 10,
               pc_range: list[float] | None = None) -> dict:
    """The model dict of ``tests/kd/configs/tiny_raydn.py`` with the given changes."""
    model = Config.fromfile(str(CONFIGS / "tiny_raydn.py")).model.to_dict()
    model["pts_bbox_head"]["transformer"]["decoder"]["transformerlayers"]["attn_cfgs"][1]["num_cams"] = num_cams
    _set_embed_dims(model, embed_dims)
    head = model["pts_bbox_head"]
    head["num_classes"] = head["bbox_coder"]["num_classes"] = num_classes
    if pc_range is not None:
        head["bbox_coder"]["pc_range"] = list(pc_range)
        model["train_cfg"]["pts"]["assigner"]["pc_range"] = list(pc_range)
    return model


def tiny_streampetr() -> dict:
    """The model dict of ``tests/kd/configs/tiny_streampetr.py``."""
    return Config.fromfile(str(CONFIGS / "tiny_streampetr.py")).model.to_dict()


def _camera(yaw: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """lidar2img, intrinsics, extrinsics (4, 4) of a camera at the origin looking along yaw."""
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.tensor([[80.0, 0.0, IMG_W / 2], [0.0, 80.0, IMG_H / 2], [0.0, 0.0, 1.0]])
    forward = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
    right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
    extrinsics = torch.eye(4)
    extrinsics[:3, :3] = torch.stack([right, torch.tensor([0.0, 0.0, -1.0]), forward])
    return intrinsics @ extrinsics, intrinsics, extrinsics


def make_batch(batch: int = 2, num_cams: int = 2, prev_exists: bool = False, t: float = 0.0,
               seed: int = 0) -> dict[str, Any]:
    """A batch of docs/data_contract.md with two GT boxes in front of camera 0 in sample 0."""
    gen = torch.Generator().manual_seed(seed)
    cams = [_camera(2 * math.pi * n / num_cams) for n in range(num_cams)]
    stack = [torch.stack([c[i] for c in cams]).unsqueeze(0).repeat(batch, 1, 1, 1) for i in range(3)]
    boxes = torch.tensor([[15.0, 1.0, 0.0, 4.0, 2.0, 1.5, 0.2, 1.0, 0.0],
                          [22.0, -3.0, 0.5, 0.8, 0.7, 1.7, 1.0, 0.0, 0.5]])
    return dict(
        img=torch.randn(batch, num_cams, 3, IMG_H, IMG_W, generator=gen),
        lidar2img=stack[0], intrinsics=stack[1], extrinsics=stack[2],
        ego_pose=torch.eye(4).repeat(batch, 1, 1), ego_pose_inv=torch.eye(4).repeat(batch, 1, 1),
        timestamp=torch.full((batch,), t, dtype=torch.float64),
        prev_exists=torch.full((batch,), prev_exists, dtype=torch.bool),
        img_shape=[(IMG_H, IMG_W)] * batch, pad_shape=[(IMG_H, IMG_W)] * batch,
        gt_bboxes_3d=[boxes.clone()] + [torch.zeros(0, 9) for _ in range(batch - 1)],
        gt_labels_3d=[torch.tensor([0, 8])] + [torch.zeros(0, dtype=torch.long) for _ in range(batch - 1)],
        gt_bboxes=[[torch.tensor([[60.0, 20.0, 110.0, 45.0]]) for _ in range(num_cams)] for _ in range(batch)],
        gt_labels=[[torch.tensor([0]) for _ in range(num_cams)] for _ in range(batch)],
        centers2d=[[torch.tensor([[85.0, 32.0]]) for _ in range(num_cams)] for _ in range(batch)],
        depths=[[torch.tensor([15.0]) for _ in range(num_cams)] for _ in range(batch)],
    )


def save_detector(model_cfg: dict, path: Path, seed: int = 1) -> Path:
    """Build ``model_cfg`` with ``seed`` and save its state dict (a 'trained' checkpoint)."""
    torch.manual_seed(seed)
    torch.save({"state_dict": MODELS.build(copy.deepcopy(model_cfg)).state_dict()}, path)
    return path


FPN_TAPS = {f"{who[0]}_fpn_{i}": dict(model=who, path=f"img_neck.fpn_convs.{i}.conv")
            for who in ("student", "teacher") for i in range(4)}
BKL_LOSSES = {f"bkl_fpn_{i}": dict(type="BalancedKLLoss", tau=4.0, reverse_weight=7.0, loss_weight=0.1,
                                   inputs=dict(student=f"s_fpn_{i}", teacher=f"t_fpn_{i}"))
              for i in range(4)}


@pytest.fixture(scope="session")
def teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny RayDN teacher (2 cameras)."""
    return save_detector(tiny_raydn(), tmp_path_factory.mktemp("teacher") / "teacher.pth")


@pytest.fixture(scope="session")
def config_teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the model of ``tiny_raydn.py`` as it is (6 cameras): the teacher that
    ``tiny_distill_raydn.py`` trains with on the generated world."""
    model = Config.fromfile(str(CONFIGS / "tiny_raydn.py")).model.to_dict()
    return save_detector(model, tmp_path_factory.mktemp("config_teacher") / "teacher.pth")


@pytest.fixture
def build_distiller(teacher_ckpt: Path) -> Callable[..., Any]:
    """``build_distiller(**overrides)``: a HarmoDistiller on the tiny RayDN pair (seeded)."""

    def build(**overrides: Any) -> Any:
        cfg = dict(type="HarmoDistiller", teacher_cfg=tiny_raydn(), teacher_ckpt=str(teacher_ckpt),
                   student_cfg=tiny_raydn(), taps=copy.deepcopy(FPN_TAPS),
                   distill_losses=copy.deepcopy(BKL_LOSSES))
        cfg.update(overrides)
        torch.manual_seed(0)
        return MODELS.build(cfg)

    return build


@pytest.fixture
def tiny() -> SimpleNamespace:
    """The helpers above: ``raydn``, ``streampetr``, ``batch``, ``save``, ``taps``, ``losses``."""
    return SimpleNamespace(raydn=tiny_raydn, streampetr=tiny_streampetr, batch=make_batch,
                           save=save_detector, taps=FPN_TAPS, losses=BKL_LOSSES)
