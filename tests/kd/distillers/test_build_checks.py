"""HarmoDistiller refuses bad declarations when it is built, with errors that name the fix."""
from __future__ import annotations

import copy

import pytest
import torch

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.registry import MODELS


def test_missing_teacher_checkpoint_fails_before_anything_is_built(tmp_path) -> None:
    missing = tmp_path / "ckpts" / "raydn_r50.pth"
    cfg = dict(type="HarmoDistiller", teacher_cfg=dict(type="NoSuchDetector"), teacher_ckpt=str(missing),
               student_cfg=dict(type="NoSuchDetector"))
    with pytest.raises(FileNotFoundError, match="teacher checkpoint not found") as err:
        MODELS.build(cfg)
    assert str(missing) in str(err.value) and "docs/distillation.md" in str(err.value)


def test_different_classes_or_ranges_are_refused(build_distiller, tiny) -> None:
    with pytest.raises(ValueError, match="num_classes: teacher 10 vs student 7"):
        build_distiller(student_cfg=tiny.raydn(num_classes=7))
    with pytest.raises(ValueError, match="pc_range"):
        build_distiller(student_cfg=tiny.raydn(pc_range=[-40.0, -40.0, -5.0, 40.0, 40.0, 3.0]))


def test_student_or_distiller_checkpoint_as_teacher_is_named(build_distiller, tiny, tmp_path) -> None:
    wrong = tiny.save(tiny.raydn(embed_dims=16), tmp_path / "student.pth")
    with pytest.raises(CheckpointError, match="Is it another model's checkpoint") as err:
        build_distiller(teacher_ckpt=str(wrong))
    assert "shape mismatches" in str(err.value)
    distilled = tmp_path / "distilled.pth"
    torch.save({"state_dict": build_distiller().state_dict()}, distilled)
    with pytest.raises(CheckpointError, match="is a distiller checkpoint"):
        build_distiller(teacher_ckpt=str(distilled))


def test_bad_tap_path_lists_close_matches(build_distiller) -> None:
    taps = dict(s=dict(model="student", path="img_neck.fpn_conv.0.conv"),
                t=dict(model="teacher", path="img_neck.fpn_convs.0.conv"))
    losses = dict(bkl=dict(type="BalancedKLLoss", inputs=dict(student="s", teacher="t")))
    with pytest.raises(KeyError, match=r"has no module 'img_neck.fpn_conv.0.conv'.*img_neck.fpn_convs.0.conv"):
        build_distiller(taps=taps, distill_losses=losses)
    taps["s"] = dict(model="studnet", path="img_neck.fpn_convs.0.conv")
    with pytest.raises(KeyError, match="model must be one of"):
        build_distiller(taps=taps, distill_losses=losses)
    taps["s"] = dict(model="student", path="img_neck.fpn_convs.0.conv", cal=1)
    with pytest.raises(KeyError, match="unknown keys"):
        build_distiller(taps=taps, distill_losses=losses)


@pytest.mark.parametrize("inputs, adapter, message", [
    (dict(studnet="s", teacher="t"), None, r"'studnet' is not an argument of BalancedKLLoss.forward.*'student'"),
    (dict(student="s", teacher="t_fnp0"), None, r"'t_fnp0' is not a declared tap.*close matches: \['t_fpn0'\]"),
    (dict(student="s"), None, r"requires \['teacher'\]"),
    (dict(student="s", teacher="t", progress="s"), None, "'progress' is reserved"),
    (dict(student="s", teacher="t"), dict(student="nope"), "no adapter named 'nope'"),
    (dict(student="s", teacher="t"), dict(features="proj"), "'features' is not one of its inputs"),
])
def test_bad_loss_inputs_fail_at_build(build_distiller, inputs, adapter, message) -> None:
    taps = dict(s=dict(model="student", path="img_neck.fpn_convs.0.conv"),
                t=dict(model="teacher", path="img_neck.fpn_convs.0.conv"),
                t_fpn0=dict(model="teacher", path="img_neck.fpn_convs.0.conv"))
    loss = dict(type="BalancedKLLoss", inputs=inputs)
    if adapter is not None:
        loss["adapter"] = adapter
    adapters = dict(proj=dict(type="ConvAdapter", in_channels=32, out_channels=32))
    with pytest.raises(KeyError, match=message):
        build_distiller(taps=taps, adapters=adapters, distill_losses=dict(bkl=loss))


def test_unused_taps_and_adapters_are_refused(build_distiller, tiny) -> None:
    taps = copy.deepcopy(tiny.taps)
    taps["extra"] = dict(model="student", path="img_neck.lateral_convs.0.conv")
    with pytest.raises(ValueError, match="used by no distillation loss: tap 'extra'"):
        build_distiller(taps=taps)
    with pytest.raises(ValueError, match="adapter 'proj'"):
        build_distiller(adapters=dict(proj=dict(type="ConvAdapter", in_channels=32, out_channels=32)))


def test_bad_options_are_named(build_distiller) -> None:
    with pytest.raises(ValueError, match="teacher_input_size"):
        build_distiller(teacher_input_size=(128,))
    with pytest.raises(KeyError, match="pseudo_label_cfg: unknown keys"):
        build_distiller(pseudo_label_cfg=dict(score_thr=0.4, max_boxes=50))
    with pytest.raises(KeyError, match="needs inputs"):
        build_distiller(distill_losses=dict(bkl=dict(type="BalancedKLLoss")))
