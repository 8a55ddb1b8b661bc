"""A distiller trained by the engine (engine.runner.train) on the generated world, then exported."""
from __future__ import annotations

from pathlib import Path

import torch

from projects.mmdet3d_plugin.core.checkpoint import apply_state_dict, read_checkpoint
from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv
from projects.mmdet3d_plugin.kd.student_conversion import convert_distiller_checkpoint
from projects.mmdet3d_plugin.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_engine_trains_the_student_only_and_the_export_loads(synthetic_world, synthetic_infos,
                                                           config_teacher_ckpt, tmp_path) -> None:
    student_cfg = load_config(CONFIGS / "tiny_raydn.py")
    cfg = load_config(CONFIGS / "tiny_distill_raydn.py", {
        "model.teacher_ckpt": str(config_teacher_ckpt), "data.train.ann_file": str(synthetic_infos["train"]),
        "data.train.data_root": str(synthetic_world), "data.val.ann_file": str(synthetic_infos["val"]),
        "data.val.data_root": str(synthetic_world)})
    env = LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1)
    module = train(cfg, tmp_path / "work", env=env, enable_progress_bar=False)
    assert module.model.progress == 0.5  # told before each of the 2 steps: 0/2, then 1/2
    assert 0.0 <= module.last_metrics["NDS"] <= 1.0  # the evaluation ran on the student's predictions

    ckpt = read_checkpoint(tmp_path / "work" / "latest.pth")
    state = ckpt["state_dict"]
    assert ckpt["global_step"] == 2 and {key.split(".")[0] for key in state} == {"student", "teacher"}
    assert set(ckpt["temporal_state"]) == {"teacher.pts_bbox_head.memory", "student.pts_bbox_head.memory"}
    teacher = read_checkpoint(config_teacher_ckpt)["state_dict"]
    assert all(torch.equal(state[f"teacher.{k}"], v) for k, v in teacher.items())
    neck = "img_neck.fpn_convs.0.conv.weight"
    assert not torch.equal(state[f"student.{neck}"], teacher[neck])

    report = convert_distiller_checkpoint(tmp_path / "work" / "latest.pth", tmp_path / "student.pth")
    assert report.kept == len(teacher) and report.dropped["teacher"] == len(teacher)
    apply_state_dict(MODELS.build(student_cfg.model), read_checkpoint(tmp_path / "student.pth")["state_dict"])
