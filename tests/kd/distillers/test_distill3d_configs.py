"""The released distillation configs build at full size (with a stand-in teacher checkpoint).

Building a distiller needs the teacher's file, so each test writes the state dict of a freshly
built teacher to a temporary file and points ``model.teacher_ckpt`` at it, as
``--cfg-options model.teacher_ckpt=...`` would. Everything else is the config as shipped.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime
from projects.mmdet3d_plugin.kd.distillers.detector_configs import load_detector_config
from projects.mmdet3d_plugin.kd.student_conversion import extract_student_state_dict, verify_student_load
from projects.mmdet3d_plugin.paths import REPO_ROOT
from projects.mmdet3d_plugin.registry import MODELS

DISTILL3D = REPO_ROOT / "projects" / "configs" / "Distill3D"
R50_TEACHER = "raydn_r50_704_bs2_seq_428q_nui_60e_20240403.pth"
# name: (teacher checkpoint, student depth, detector, distilled FPN levels, teacher depth)
CASES = {
    "distill_raydn_r50_r18.py": (R50_TEACHER, 18, "RepDetr3D", 4, 50),
    "distill_raydn_r50_r34.py": (R50_TEACHER, 34, "RepDetr3D", 4, 50),
    "distill_raydn_r50_r18_released.py": (R50_TEACHER, 18, "RepDetr3D", 4, 50),
    "distill_raydn_r50_r34_released.py": (R50_TEACHER, 34, "RepDetr3D", 4, 50),
    "distill_raydn_r101_r18.py": ("raydn_r101_704_bs2_seq_428q_nui_60e.pth", 18, "RepDetr3D", 4, 101),
    "distill_streampetr_r50_r18.py": ("stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.pth", 18, "Petr3D", 2, 50),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_builds_the_released_distiller(name: str, tmp_path: Path) -> None:
    ckpt_name, depth, detector, levels, teacher_depth = CASES[name]
    cfg = load_config(DISTILL3D / name)
    assert cfg.model.teacher_ckpt == f"ckpts/{ckpt_name}"
    runtime = parse_runtime(cfg)
    assert runtime.schedule.max_iters == 24 * (28130 // 16) and cfg.data.samples_per_gpu == 4
    teacher_cfg = load_detector_config(cfg.model.teacher_cfg, "teacher")
    torch.save(MODELS.build(teacher_cfg.model).state_dict(), tmp_path / ckpt_name)
    cfg.merge_from_dict({"model.teacher_ckpt": str(tmp_path / ckpt_name)})
    distiller = MODELS.build(cfg.model)
    assert type(distiller.student).__name__ == type(distiller.teacher).__name__ == detector
    assert distiller.student.img_backbone.depth == depth
    assert distiller.teacher.img_backbone.depth == teacher_depth
    assert len(distiller.taps) == 2 * levels and len(distiller.distill_losses) == levels
    assert {type(loss).__name__ for loss in distiller.distill_losses.values()} == {"BalancedKLLoss"}
    assert {key.split(".")[0] for key in distiller.state_dict()} == {"student", "teacher"}
    assert distiller.inherit == ()  # as released: the student inherits nothing


@pytest.mark.parametrize("depth", [18, 34])
def test_gradient_share_config_is_the_released_recipe_with_rescaled_weights(depth: int) -> None:
    released = load_config(DISTILL3D / f"distill_raydn_r50_r{depth}_released.py").model.to_dict()
    shipped = load_config(DISTILL3D / f"distill_raydn_r50_r{depth}.py").model.to_dict()
    assert {k: v["loss_weight"] for k, v in released["distill_losses"].items()} == {
        "bkl_fpn_0": 0.1, "bkl_fpn_1": 0.1, "bkl_fpn_2": 0.1, "bkl_fpn_3": 0.01}
    for name, loss in shipped["distill_losses"].items():
        assert loss.pop("loss_weight") == pytest.approx(1.4 * released["distill_losses"][name].pop("loss_weight"))
    assert shipped == released


def test_r101_teacher_recipe_is_the_r50_recipe_with_another_teacher(tmp_path: Path) -> None:
    """Same taps, losses, student and runtime as distill_raydn_r50_r18.py; the frozen R101
    teacher runs in eval mode (its with_cp / trainable BN are inert), and the converted
    student loads strictly into the R18 detector."""
    r101 = load_config(DISTILL3D / "distill_raydn_r101_r18.py")
    r50 = load_config(DISTILL3D / "distill_raydn_r50_r18.py")
    shipped, reference = r101.model.to_dict(), r50.model.to_dict()
    assert shipped.pop("teacher_cfg") == "projects/configs/RayDN/raydn_r101_704_bs2_seq_428q_nui_60e.py"
    assert shipped.pop("teacher_ckpt") == "ckpts/raydn_r101_704_bs2_seq_428q_nui_60e.pth"
    for key in ("teacher_cfg", "teacher_ckpt"):
        reference.pop(key)
    assert shipped == reference and parse_runtime(r101) == parse_runtime(r50)
    teacher_cfg = load_detector_config(r101.model.teacher_cfg, "teacher")
    torch.save(MODELS.build(teacher_cfg.model).state_dict(), tmp_path / "teacher.pth")
    r101.merge_from_dict({"model.teacher_ckpt": str(tmp_path / "teacher.pth")})
    distiller = MODELS.build(r101.model)
    distiller.train()
    assert not distiller.teacher.training and not distiller.teacher.img_backbone.layer4[0].bn1.training
    assert not any(p.requires_grad for p in distiller.teacher.parameters())
    student, dropped = extract_student_state_dict(distiller.state_dict())
    assert dropped["teacher"] and not dropped["other"]
    verify_student_load(student, r101, source="the R101->R18 distiller's student")


def test_synthetic_config_inherits_the_parts_it_shares_with_its_teacher(tmp_path: Path) -> None:
    cfg = load_config(REPO_ROOT / "projects" / "configs" / "synthetic" / "distill_raydn_r50_r18_synthetic.py")
    teacher_cfg = load_detector_config(cfg.model.teacher_cfg, "teacher")
    torch.save(MODELS.build(teacher_cfg.model).state_dict(), tmp_path / "teacher.pth")
    cfg.merge_from_dict({"model.teacher_ckpt": str(tmp_path / "teacher.pth")})
    distiller = MODELS.build(cfg.model)
    assert distiller.inherit == ("img_neck.fpn_convs", "img_roi_head", "pts_bbox_head")
    student, teacher = distiller.student.state_dict(), distiller.teacher.state_dict()
    inherited = [k for k in student if k.startswith(tuple(p + "." for p in distiller.inherit))]
    assert inherited and all(torch.equal(student[k], teacher[k]) for k in inherited)
    assert not torch.equal(student["img_neck.lateral_convs.0.conv.weight"][:, :64],
                           teacher["img_neck.lateral_convs.0.conv.weight"][:, :64])


BEV_CONFIGS = {
    "Distill3D": DISTILL3D / "distill_raydn_r50_r18_bev.py",
    "synthetic": REPO_ROOT / "projects" / "configs" / "synthetic" / "distill_raydn_r50_r18_bev_synthetic.py",
}
#: The taps the BEV losses read, on the tiny RayDN (2 decoder layers).
TINY_BEV_TAPS = {
    **{f"{who[0]}_fpn_{i}": dict(model=who, path=f"img_neck.fpn_convs.{i}.conv")
       for who in ("student", "teacher") for i in range(4)},
    "t_cls": dict(model="teacher", path="pts_bbox_head.cls_branches.0", call=1),
    "t_box": dict(model="teacher", path="pts_bbox_head.box_codes", call=1),
}


def test_bev_config_builds_the_distiller_with_its_bev_losses(tmp_path: Path) -> None:
    cfg = load_config(BEV_CONFIGS["Distill3D"])
    teacher_cfg = load_detector_config(cfg.model.teacher_cfg, "teacher")
    torch.save(MODELS.build(teacher_cfg.model).state_dict(), tmp_path / "teacher.pth")
    cfg.merge_from_dict({"model.teacher_ckpt": str(tmp_path / "teacher.pth")})
    distiller = MODELS.build(cfg.model)
    bev = {name: loss for name, loss in distiller.distill_losses.items() if type(loss).__name__ == "BEVFeatureLoss"}
    assert sorted(bev) == ["bev_fpn_0", "bev_fpn_1"] and len(distiller.distill_losses) == 6
    assert all(loss.lifting.bev_size == (128, 128) and loss.lifting.pc_range[2:6:3] == [-5.0, 3.0]
               for loss in bev.values())
    assert {"t_cls", "t_box"} <= set(distiller.taps.names)
    assert {key.split(".")[0] for key in distiller.state_dict()} == {"student", "teacher"}


@pytest.mark.parametrize("which", sorted(BEV_CONFIGS))
def test_bev_losses_of_the_config_train_a_tiny_student_that_converts(which: str, tiny, teacher_ckpt: Path) -> None:
    losses = {name: cfg for name, cfg in load_config(BEV_CONFIGS[which]).model.distill_losses.to_dict().items()
              if cfg["type"] == "BEVFeatureLoss"}
    used = {src for cfg in losses.values() for src in cfg["inputs"].values() if not src.startswith("batch.")}
    torch.manual_seed(0)
    distiller = MODELS.build(dict(type="HarmoDistiller", teacher_cfg=tiny.raydn(), teacher_ckpt=str(teacher_ckpt),
                                  student_cfg=tiny.raydn(), distill_losses=losses,
                                  taps={k: v for k, v in TINY_BEV_TAPS.items() if k in used}))
    optimizer = torch.optim.Adam([p for p in distiller.parameters() if p.requires_grad], lr=1e-3)
    distiller.train()
    before = distiller.student.img_neck.fpn_convs[0].conv.weight.detach().clone()
    for step in range(2):
        values = distiller(tiny.batch(prev_exists=step > 0, seed=step), mode="loss")
        assert all(torch.isfinite(values[f"loss_{name}"]) and values[f"loss_{name}"] > 0 for name in losses)
        optimizer.zero_grad()
        torch.stack([v for k, v in values.items() if "loss" in k]).sum().backward()
        optimizer.step()
    assert not torch.equal(before, distiller.student.img_neck.fpn_convs[0].conv.weight)
    student, dropped = extract_student_state_dict(distiller.state_dict())
    assert dropped["teacher"] and not dropped["distill_losses"]  # the BEV losses hold no weights
    MODELS.build(tiny.raydn()).load_state_dict(student, strict=True)
