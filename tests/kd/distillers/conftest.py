"""Checkpoints of the tiny detectors of tests/fixtures, distillers on them and the taps and
losses of the distiller tests."""
from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import contract_batch
from tests.fixtures.tiny_models import tiny_raydn, tiny_streampetr


def save_detector(model_cfg: dict, path: Path, seed: int = 1) -> Path:
    """Build ``model_cfg`` with ``seed`` and save its state dict (a 'trained' checkpoint)."""
    torch.manual_seed(seed)
    torch.save({"state_dict": MODELS.build(copy.deepcopy(model_cfg)).state_dict()}, path)
    return path


FPN_TAPS = {f"{who[0]}_fpn_{i}": dict(model=who, path=f"img_neck.fpn_convs.{i}.conv")
            for who in ("student", "teacher") for i in range(4)}
BKL_LOSSES = {f"bkl_fpn_{i}": dict(type="BalancedKLLoss", tau=4.0, reverse_weight=7.0, loss_weight=0.1,
                                   inputs=dict(student=f"s_fpn_{i}", teacher=f"t_fpn_{i}"))
              for i in range(4)}


@pytest.fixture(scope="session")
def teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny RayDN teacher (2 cameras)."""
    return save_detector(tiny_raydn(), tmp_path_factory.mktemp("teacher") / "teacher.pth")


@pytest.fixture(scope="session")
def config_teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the model of ``tiny_raydn.py`` as it is (6 cameras): the teacher that
    ``tiny_distill_raydn.py`` trains with on the generated world."""
    return save_detector(tiny_raydn(num_cams=6), tmp_path_factory.mktemp("config_teacher") / "teacher.pth")


@pytest.fixture
def build_distiller(teacher_ckpt: Path) -> Callable[..., Any]:
    """``build_distiller(**overrides)``: a HarmoDistiller on the tiny RayDN pair (seeded)."""

    def build(**overrides: Any) -> Any:
        cfg = dict(type="HarmoDistiller", teacher_cfg=tiny_raydn(), teacher_ckpt=str(teacher_ckpt),
                   student_cfg=tiny_raydn(), taps=copy.deepcopy(FPN_TAPS),
                   distill_losses=copy.deepcopy(BKL_LOSSES))
        cfg.update(overrides)
        torch.manual_seed(0)
        return MODELS.build(cfg)

    return build


@pytest.fixture
def tiny() -> SimpleNamespace:
    """The helpers: ``raydn``, ``streampetr`` (tests/fixtures/tiny_models.py), ``batch``
    (tests/fixtures/batches.py), ``save``, ``taps``, ``losses`` (above)."""
    return SimpleNamespace(raydn=tiny_raydn, streampetr=tiny_streampetr, batch=contract_batch,
                           save=save_detector, taps=FPN_TAPS, losses=BKL_LOSSES)
