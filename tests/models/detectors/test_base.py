"""The detector interface: a detector lacking a method fails when built; builders reject
objects that do not implement it; the shared methods behave."""
from __future__ import annotations

import pytest
import torch
from mmengine.config import Config
from torch import nn

from projects.mmdet3d_plugin.engine.runner import build_model
from projects.mmdet3d_plugin.models.detectors.base import (GRID_MASK_DEFAULTS, StreamingDetector, StreamingModel,
                                                           build_detector, build_grid_mask, check_streaming_model,
                                                           head_cfg)
from projects.mmdet3d_plugin.models.detectors.petr3d import Petr3D
from projects.mmdet3d_plugin.models.detectors.repdetr3d import RepDetr3D

from .test_petr3d import MODEL as PETR_MODEL
from .test_repdetr3d import tiny_model_cfg


class _NoFeatures(StreamingDetector):
    """Implements everything but ``extract_feat``."""

    def forward(self, batch, mode="loss"):
        return {}

    def head_outputs(self, feats, geometry, pad_shape):
        return {}


def test_a_detector_missing_a_method_cannot_be_built() -> None:
    with pytest.raises(TypeError, match="extract_feat"):
        _NoFeatures()


@pytest.mark.parametrize("cls", [Petr3D, RepDetr3D])
def test_shipped_detectors_implement_every_method(cls) -> None:
    assert issubclass(cls, StreamingDetector) and not cls.__abstractmethods__


def test_builders_reject_what_is_not_a_detector() -> None:
    with pytest.raises(TypeError, match="StreamingModel interface"):
        check_streaming_model(nn.Linear(2, 2), "model.type='Linear'")
    with pytest.raises(TypeError, match=r"type='CPFPN'.*not a StreamingDetector"):
        build_detector(dict(type="CPFPN", in_channels=[8, 16], out_channels=8, num_outs=2), "the student config")
    with pytest.raises(TypeError, match=r"model.type='CPFPN'.*StreamingModel"):
        build_model(Config(dict(model=dict(type="CPFPN", in_channels=[8, 16], out_channels=8, num_outs=2))))


def test_init_weights_initialises_the_backbone_of_both_detectors(monkeypatch) -> None:
    called = []
    for cfg in (PETR_MODEL, tiny_model_cfg()):
        detector = build_detector(cfg)
        assert isinstance(detector, StreamingModel)
        monkeypatch.setattr(detector.img_backbone, "init_weights", lambda: called.append("backbone"))
        monkeypatch.setattr(detector.img_neck, "init_weights", lambda: called.append("neck"))
        detector.init_weights()
    assert called == ["backbone", "neck"] * 2


def test_feature_precision_is_validated_and_off_in_eval() -> None:
    detector = build_detector(tiny_model_cfg())
    with pytest.raises(ValueError, match="dtype must be one of"):
        detector.set_feature_precision(torch.float64)
    detector.set_feature_precision(torch.bfloat16)
    detector.eval()
    with detector.feature_autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    detector.train()
    with detector.feature_autocast(torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_grid_mask_defaults_and_overrides() -> None:
    default = build_grid_mask(None, "Petr3D")
    assert default.prob == GRID_MASK_DEFAULTS["prob"] == 0.7
    assert build_grid_mask(dict(prob=0.2), "Petr3D").prob == 0.2
    with pytest.raises(ValueError, match="RepDetr3D grid_mask_cfg keys \\['prb'\\]"):
        build_grid_mask(dict(prb=0.2), "RepDetr3D")


@pytest.mark.parametrize("train_cfg, test_cfg, head_train_cfg, message", [
    (dict(pts=dict(), img=dict()), None, None, "RepDetr3D train_cfg takes only the key 'pts'"),
    (dict(pts=dict(a=1)), None, dict(a=1), "not both"),
    (None, dict(pts=dict(max_per_img=300)), None, "RepDetr3D: test_cfg"),
])
def test_head_cfg_validation(train_cfg, test_cfg, head_train_cfg, message) -> None:
    with pytest.raises(ValueError, match=message):
        head_cfg(dict(type="RayDNHead", train_cfg=head_train_cfg), train_cfg, test_cfg, "RepDetr3D")


def test_head_cfg_fills_train_cfg_pts() -> None:
    pts = dict(assigner=dict(type="HungarianAssigner3D"))
    cfg = head_cfg(dict(type="StreamPETRHead"), dict(pts=pts), dict(pts=None), "Petr3D")
    assert cfg == dict(type="StreamPETRHead", train_cfg=pts) and cfg["train_cfg"] is not pts
    assert head_cfg(dict(type="StreamPETRHead"), None, None, "Petr3D") == dict(type="StreamPETRHead")
