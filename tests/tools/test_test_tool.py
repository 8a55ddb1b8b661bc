"""tools/test.py: a distiller checkpoint with a plain detector config gets the export command."""
from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = REPO / "tests" / "engine" / "configs" / "tiny_raydn.py"


def _tool():
    spec = importlib.util.spec_from_file_location("test_tool", REPO / "tools" / "test.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules["test_tool"] = tool
    spec.loader.exec_module(tool)
    return tool


def test_distiller_checkpoint_with_a_detector_config_prints_the_convert_command(tmp_path, monkeypatch):
    ckpt = tmp_path / "latest.pth"
    torch.save({"state_dict": {"student.img_backbone.conv1.weight": torch.zeros(1),
                               "teacher.img_backbone.conv1.weight": torch.zeros(1)},
                "global_step": 4}, ckpt)
    monkeypatch.setattr(sys, "argv", ["test.py", str(TINY_CONFIG), str(ckpt)])
    with pytest.raises(SystemExit) as info:
        _tool().main()
    message = str(info.value.code)
    expected = (f"python tools/distill_convert.py --src_path {ckpt} --dst_path {tmp_path / 'latest_student.pth'} "
                f"--config {TINY_CONFIG}")
    assert "distiller checkpoint" in message and expected in message, message


def test_a_detector_checkpoint_is_not_refused(tmp_path):
    from projects.mmdet3d_plugin.engine.runner import load_config

    ckpt = tmp_path / "student.pth"
    torch.save({"state_dict": {"img_backbone.conv1.weight": torch.zeros(1)}}, ckpt)
    _tool().refuse_distiller_checkpoint(load_config(TINY_CONFIG), str(TINY_CONFIG), str(ckpt))
