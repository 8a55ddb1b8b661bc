"""tools/load_from_keys.py: the per-module table of what a checkpoint gives a config's model."""
from __future__ import annotations

import importlib.util

import torch

from projects.mmdet3d_plugin.core.checkpoint import save_checkpoint
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = REPO / "tests" / "engine" / "configs" / "tiny_raydn.py"


def _tool():
    spec = importlib.util.spec_from_file_location("load_from_keys", REPO / "tools" / "load_from_keys.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prints_the_table_and_skipped_keys(tmp_path, capsys) -> None:
    path = save_checkpoint({"img_backbone.conv1.weight": torch.zeros(64, 3, 7, 7),
                            "img_backbone.bn1.weight": torch.zeros(128)}, tmp_path / "r50.pth")
    assert _tool().main([str(TINY_CONFIG), str(path)]) == 0
    out = capsys.readouterr().out
    assert "loaded 1 tensors" in out and "img_backbone.bn1.weight: [64] <- [128]" in out


def test_missing_source_is_an_error(tmp_path, capsys) -> None:
    assert _tool().main([str(TINY_CONFIG), str(tmp_path / "absent.pth")]) == 1
    assert "absent.pth" in capsys.readouterr().err
