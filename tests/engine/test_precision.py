"""Precision: config spellings, the upstream mapping of the fp16 hook, CLI overrides, where
autocast is on (training steps, evaluation steps, the detectors' image features)."""
from __future__ import annotations


import lightning as L
import pytest
import torch

from projects.mmdet3d_plugin.engine.precision import (PrecisionSpec, StepPrecision, apply_feature_precision,
                                                      parse_precision, precision_plugins)
from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.models.detectors.base import build_detector

from ..models.detectors.test_repdetr3d import make_batch, tiny_model_cfg
from .test_runner import CPU, tiny_cfg
from projects.mmdet3d_plugin.paths import REPO_ROOT

CONFIGS = REPO_ROOT / "projects" / "configs"
# mmcv's fp16 hook (torch >= 1.6): autocast only inside @auto_fp16 functions (the detectors'
# extract_feat: backbone + neck, outputs back to fp32), dynamic loss scale, and testing
# through the undecorated extract_img_feat, i.e. fp32.
UPSTREAM_FP16_HOOK = PrecisionSpec(train="16-mixed", scope="image_features", test="fp32")


@pytest.mark.parametrize("cfg, expected", [
    ({}, PrecisionSpec()),
    ({"fp16": None}, PrecisionSpec()),
    ({"fp16": {"loss_scale": "dynamic"}}, UPSTREAM_FP16_HOOK),
    ({"optimizer_config": {"type": "Fp16OptimizerHook", "loss_scale": 512.0}}, UPSTREAM_FP16_HOOK),
    ({"precision": "bf16-mixed"}, PrecisionSpec(train="bf16-mixed", scope="model", test="fp32")),
    ({"precision": {"train": "bf16-mixed", "scope": "image_features", "test": "bf16-mixed"}},
     PrecisionSpec("bf16-mixed", "image_features", "bf16-mixed")),
])
def test_config_spellings(cfg, expected) -> None:
    assert parse_precision(cfg) == expected


@pytest.mark.parametrize("path", ["StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py",
                                  "RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py"])
def test_upstream_configs_train_their_features_in_fp16_and_test_in_fp32(path) -> None:
    assert parse_precision(load_config(CONFIGS / path)) == UPSTREAM_FP16_HOOK


@pytest.mark.parametrize("cfg, error, message", [
    ({"precision": "fp16"}, ValueError, "precision.train must be one of"),
    ({"precision": {"train": "bf16-mixed", "scop": "model"}}, KeyError, "scop"),
    ({"precision": "bf16-mixed", "fp16": {"loss_scale": "dynamic"}}, ValueError, "both 'precision' and the fp16 hook"),
    ({"precision": {"train": "bf16-mixed", "test": "16-mixed"}}, ValueError, "two different mixed precisions"),
    ({"precision": 16}, TypeError, "'precision' must be one of"),
])
def test_bad_precision_configs_raise(cfg, error, message) -> None:
    with pytest.raises(error, match=message):
        parse_precision(cfg)


def test_command_line_override_and_cpu_fallback(capsys) -> None:
    assert UPSTREAM_FP16_HOOK.override(train="bf16-mixed") == PrecisionSpec("bf16-mixed", "model", "fp32")
    assert PrecisionSpec().override(test="bf16-mixed") == PrecisionSpec(test="bf16-mixed")
    assert UPSTREAM_FP16_HOOK.on_device("gpu") == UPSTREAM_FP16_HOOK
    assert UPSTREAM_FP16_HOOK.on_device("cpu") == PrecisionSpec("fp32", "image_features", "fp32")
    assert "16-mixed precision needs a GPU" in capsys.readouterr().out
    assert precision_plugins(PrecisionSpec(), "cpu") == []


@pytest.mark.parametrize("spec, in_train, in_eval", [
    (PrecisionSpec("bf16-mixed", "model", "fp32"), True, False),
    (PrecisionSpec("bf16-mixed", "image_features", "fp32"), False, False),
    (PrecisionSpec("fp32", "model", "bf16-mixed"), False, True),
])
def test_step_contexts_autocast_where_the_spec_says(spec, in_train, in_eval) -> None:
    plugin = StepPrecision(spec, "cpu")
    with plugin.train_step_context():
        assert torch.is_autocast_enabled("cpu") is in_train
    for context in (plugin.val_step_context, plugin.test_step_context, plugin.predict_step_context):
        with context():
            assert torch.is_autocast_enabled("cpu") is in_eval


def _dtypes_seen(detector: torch.nn.Module, train: bool) -> dict[str, torch.dtype]:
    """dtype of the backbone's last output and of the 3D head's first input in one call."""
    seen: dict[str, torch.dtype] = {}
    hooks = [detector.img_backbone.register_forward_hook(lambda _m, _i, out: seen.__setitem__("backbone", out[-1].dtype)),
             detector.pts_bbox_head.register_forward_pre_hook(lambda _m, args: seen.__setitem__("head", args[0][0].dtype))]
    detector.train(train)
    detector.reset_memory()
    with torch.no_grad():
        detector(make_batch(), mode="loss" if train else "predict")
    for hook in hooks:
        hook.remove()
    return seen


def test_image_feature_scope_autocasts_backbone_and_neck_only_in_training() -> None:
    torch.manual_seed(0)
    detector = build_detector(tiny_model_cfg())
    assert apply_feature_precision(detector, PrecisionSpec("bf16-mixed", "image_features")) == 1
    assert _dtypes_seen(detector, train=True) == {"backbone": torch.bfloat16, "head": torch.float32}
    assert _dtypes_seen(detector, train=False) == {"backbone": torch.float32, "head": torch.float32}
    apply_feature_precision(detector, PrecisionSpec("bf16-mixed", "model"))
    assert _dtypes_seen(detector, train=True) == {"backbone": torch.float32, "head": torch.float32}


class _BackboneDtypes(L.Callback):
    """Records ``(training, dtype of the backbone's last output)`` of every call in a run."""

    def __init__(self) -> None:
        self.seen: set[tuple[bool, torch.dtype]] = set()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        backbone = pl_module.model.img_backbone
        backbone.register_forward_hook(lambda m, _i, out: self.seen.add((m.training, out[-1].dtype)))


@pytest.mark.slow
def test_bf16_training_autocasts_the_step_and_evaluates_in_fp32(synthetic_world, synthetic_infos, tmp_path) -> None:
    cfg = tiny_cfg(synthetic_world, synthetic_infos, **{"runner.max_iters": 2, "evaluation.interval": 2,
                                                       "checkpoint_config.interval": 2})
    recorder = _BackboneDtypes()
    module = train(cfg, tmp_path, env=CPU, enable_progress_bar=False, extra_callbacks=[recorder],
                   precision="bf16-mixed")
    assert recorder.seen == {(True, torch.bfloat16), (False, torch.float32)}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in module.model.parameters())
    assert 0.0 <= module.last_metrics["NDS"] <= 1.0
