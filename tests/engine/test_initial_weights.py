"""``load_from`` in a training run: after ``init_weights``, strict or by matching names and shapes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError, save_checkpoint
from projects.mmdet3d_plugin.engine import initial_weights, runner
from projects.mmdet3d_plugin.engine.initial_weights import compare_load_from, load_initial_weights
from projects.mmdet3d_plugin.engine.runtime_config import LoadFromSpec
from projects.mmdet3d_plugin.models.backbones.resnet import ResNet
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = REPO / "tests" / "engine" / "configs" / "tiny_raydn.py"


class _Stop(Exception):
    """Ends ``runner.train`` right after the weights are set up (no data needed)."""


def _partial_detector_file(path: Path) -> Path:
    """Known values for two tiny-RayDN tensors, one wrong shape, one foreign key."""
    return save_checkpoint({"state_dict": {
        "img_backbone.conv1.weight": torch.full((64, 3, 7, 7), 0.5),
        "img_neck.fpn_convs.0.conv.bias": torch.full((32,), 0.25),
        "img_backbone.layer1.0.conv1.weight": torch.zeros(64, 256, 1, 1),
        "roi_head.bbox_head.fc_cls.weight": torch.zeros(11, 1024),
    }}, path)


def _train_until_data(monkeypatch, options: dict) -> tuple[list, list]:
    """Run ``runner.train`` on the tiny config up to its first dataset; returns the order of
    the init / load events and the (model, report) pairs the load saw."""
    events, loads = [], []
    original_init, original_load = ResNet.init_weights, runner.load_initial_weights

    def init(self) -> None:
        events.append("init_weights")
        original_init(self)

    def load(model, spec):
        events.append("load_from")
        loads.append((model, original_load(model, spec)))
        return loads[-1][1]

    def stop(cfg, split):
        raise _Stop

    monkeypatch.setattr(ResNet, "init_weights", init)
    monkeypatch.setattr(runner, "load_initial_weights", load)
    monkeypatch.setattr(runner, "build_dataset", stop)
    with pytest.raises(_Stop):
        runner.train(runner.load_config(TINY_CONFIG, options), "unused", enable_progress_bar=False)
    return events, loads


def test_train_loads_non_strictly_after_init_weights(monkeypatch, tmp_path) -> None:
    path = _partial_detector_file(tmp_path / "r50.pth")
    events, loads = _train_until_data(monkeypatch, {"load_from": str(path), "load_from_strict": False})
    assert events == ["init_weights", "load_from"]
    (model, report), = loads
    assert torch.equal(model.img_backbone.conv1.weight, torch.full((64, 3, 7, 7), 0.5))
    assert torch.equal(model.img_neck.fpn_convs[0].conv.bias, torch.full((32,), 0.25))
    assert set(report.loaded) == {"img_backbone.conv1.weight", "img_neck.fpn_convs.0.conv.bias"}
    assert report.skipped == {"img_backbone.layer1.0.conv1.weight": ((64, 64, 3, 3), (64, 256, 1, 1))}
    assert report.unexpected == ("roi_head.bbox_head.fc_cls.weight",)


def test_train_loads_strictly_by_default(monkeypatch, tmp_path) -> None:
    path = _partial_detector_file(tmp_path / "r50.pth")
    with pytest.raises(CheckpointError, match=r"r50\.pth.*strict loading"):
        _train_until_data(monkeypatch, {"load_from": str(path)})


def test_the_report_is_printed(monkeypatch, tmp_path) -> None:
    lines = []
    monkeypatch.setattr(initial_weights, "rank_zero_info", lines.append)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    path = save_checkpoint({"0.weight": torch.ones(2, 2), "0.bias": torch.ones(3)}, tmp_path / "f.pth")
    load_initial_weights(model, LoadFromSpec(str(path), strict=False))
    assert len(lines) == 1 and "non-strict" in lines[0] and "0.bias: [2] <- [3]" in lines[0]


def test_compare_load_from_config_against_checkpoint_file(tmp_path) -> None:
    path = _partial_detector_file(tmp_path / "r50.pth")
    report = compare_load_from(TINY_CONFIG, path)
    assert set(report.loaded) == {"img_backbone.conv1.weight", "img_neck.fpn_convs.0.conv.bias"}
    assert report.by_prefix()["img_roi_head"].missing == report.by_prefix()["img_roi_head"].model_tensors > 0
