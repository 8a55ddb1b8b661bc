"""A distiller built from its own checkpoint: the teacher comes from the ``teacher.*`` keys."""
from __future__ import annotations

import copy

import pytest
import torch

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.kd.distillers import build_distiller_from_checkpoint
from projects.mmdet3d_plugin.registry import MODELS

from .conftest import BKL_LOSSES, FPN_TAPS, tiny_raydn


def _model_cfg(teacher_ckpt) -> dict:
    return dict(type="HarmoDistiller", teacher_cfg=tiny_raydn(), teacher_ckpt=str(teacher_ckpt),
                student_cfg=tiny_raydn(), taps=copy.deepcopy(FPN_TAPS), distill_losses=copy.deepcopy(BKL_LOSSES))


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, teacher_ckpt):
    """A distiller checkpoint whose student differs from a fresh build (as after training)."""
    torch.manual_seed(0)
    distiller = MODELS.build(_model_cfg(teacher_ckpt))
    with torch.no_grad():
        for param in distiller.student.parameters():
            param.add_(0.5)
    path = tmp_path_factory.mktemp("distilled") / "latest.pth"
    torch.save({"state_dict": distiller.state_dict()}, path)
    return path, distiller.state_dict()


def test_teacher_comes_from_the_checkpoint_when_its_file_is_missing(distilled, tmp_path):
    path, state_dict = distilled
    distiller = build_distiller_from_checkpoint(_model_cfg(tmp_path / "missing.pth"), path)
    assert distiller.teacher_ckpt is None and not distiller.training
    for key, value in distiller.state_dict().items():
        assert torch.equal(value, state_dict[key]), key


def test_no_teacher_keys_and_no_teacher_file_names_both(distilled, tmp_path):
    path, state_dict = distilled
    student_only = tmp_path / "student_only.pth"
    torch.save({k: v for k, v in state_dict.items() if not k.startswith("teacher.")}, student_only)
    with pytest.raises(FileNotFoundError, match=r"holds no 'teacher\.\*' keys") as err:
        build_distiller_from_checkpoint(_model_cfg(tmp_path / "missing.pth"), student_only)
    assert "missing.pth" in str(err.value) and "model.teacher_ckpt" in str(err.value)


def test_no_teacher_keys_loads_the_teacher_file(distilled, teacher_ckpt, tmp_path):
    path, state_dict = distilled
    student_only = tmp_path / "student_only.pth"
    torch.save({k: v for k, v in state_dict.items() if not k.startswith("teacher.")}, student_only)
    distiller = build_distiller_from_checkpoint(_model_cfg(teacher_ckpt), student_only)
    teacher = torch.load(teacher_ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(v, teacher[k]) for k, v in distiller.teacher.state_dict().items())
    assert all(torch.equal(v, state_dict[f"student.{k}"]) for k, v in distiller.student.state_dict().items())


def test_plain_detector_checkpoint_is_named(teacher_ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="plain detector checkpoint"):
        build_distiller_from_checkpoint(_model_cfg(tmp_path / "missing.pth"), teacher_ckpt)


def test_without_loaded_teacher_the_distiller_refuses_to_train(distilled, tiny, tmp_path):
    path, state_dict = distilled
    distiller = MODELS.build(dict(_model_cfg(tmp_path / "missing.pth"), load_teacher=False))
    with pytest.raises(RuntimeError, match="load_teacher=False"):
        distiller(tiny.batch(), mode="loss")
    distiller.load_state_dict(state_dict)
    assert "loss_bkl_fpn_0" in distiller.train()(tiny.batch(), mode="loss")
