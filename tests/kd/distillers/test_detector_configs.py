"""Teacher / student configs: paths, overrides, the student of a distiller config."""
from __future__ import annotations

import pytest
from mmengine.config import Config

from projects.mmdet3d_plugin.kd.distillers.detector_configs import load_detector_config, student_model_config
from projects.mmdet3d_plugin.paths import REPO_ROOT

STREAMPETR = "projects/configs/StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py"


def test_config_path_gives_model_classes_and_range(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # repository-relative paths work from any directory
    cfg = load_detector_config(STREAMPETR, "teacher")
    assert cfg.model["type"] == "Petr3D" and cfg.class_names[0] == "car" and len(cfg.class_names) == 10
    assert cfg.point_cloud_range == (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0) and cfg.source == STREAMPETR
    with pytest.raises(FileNotFoundError, match="student config not found: 'nope.py'"):
        load_detector_config("nope.py", "student")


def test_options_derive_a_student_from_a_config_file() -> None:
    options = {"model.img_backbone": dict(_delete_=True, type="ResNet", depth=18),
               "model.img_neck.in_channels": [256, 512]}
    cfg = load_detector_config(STREAMPETR, "student", options)
    assert cfg.model["img_backbone"] == dict(type="ResNet", depth=18)
    assert cfg.model["img_neck"]["in_channels"] == [256, 512]
    again = load_detector_config(STREAMPETR, "student", options)  # the options are not consumed
    assert again.model == cfg.model and options["model.img_backbone"]["_delete_"] is True
    with pytest.raises(ValueError, match="model dict"):
        load_detector_config(dict(type="Petr3D"), "student", options)
    with pytest.raises(KeyError, match="needs a 'type'|must be a model dict"):
        load_detector_config(dict(img_backbone={}), "student")


def test_student_of_a_distiller_config_and_of_a_plain_config() -> None:
    distill = Config.fromfile(str(REPO_ROOT / "projects/configs/Distill3D/distill_streampetr_r50_r18.py"))
    student = student_model_config(distill)
    assert student["type"] == "Petr3D" and student["img_backbone"]["depth"] == 18
    plain = Config.fromfile(str(REPO_ROOT / STREAMPETR))
    assert student_model_config(plain)["img_backbone"]["depth"] == 50
