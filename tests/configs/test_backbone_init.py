"""Every shipped config's backbone ``init_cfg`` is really loaded when the model is built.

For each config under ``projects/configs`` (detectors and distillers), the pretrained file its
backbone names is written locally with known values (the nuImages detector checkpoint under
``ckpts/`` with its ``backbone.`` prefix; ``torchvision://resnetXX`` in torch's hub cache),
the model is built through the engine (``build_model``: build, then ``init_weights``), and
every backbone tensor must equal the file's. A distiller's student is checked the same way
(the teacher comes from a written teacher checkpoint). Configs without ``init_cfg`` (the
synthetic world's, from scratch) must not read any file. Before issue #11, ``Petr3D`` had no
``init_weights`` and the StreamPETR configs kept a random backbone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest
import torch
from mmengine.config import Config

from projects.mmdet3d_plugin.engine.runner import build_model, load_config
from projects.mmdet3d_plugin.kd.distillers.detector_configs import load_detector_config
from projects.mmdet3d_plugin.models.backbones.pretrained import TORCHVISION_PREFIX, torchvision_url
from projects.mmdet3d_plugin.registry import MODELS
from projects.mmdet3d_plugin.paths import REPO_ROOT

ROOT = REPO_ROOT
CONFIGS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "projects" / "configs").rglob("*.py")
                 if "_base_" not in path.parts)


def _backbone_cfg(cfg: Config) -> dict:
    """The backbone config of a detector config, or of a distiller config's student."""
    if cfg.model.type != "HarmoDistiller":
        return dict(cfg.model.img_backbone)
    student = load_detector_config(cfg.model.student_cfg, "student", cfg.model.get("student_cfg_options"))
    return dict(student.model["img_backbone"])


def _known_weights(backbone_cfg: dict) -> dict[str, torch.Tensor]:
    """A ResNet state dict (torchvision names) of the config's depth with seeded values, plus
    the ``fc.*`` entries a torchvision file carries (the backbone drops them)."""
    plain = {key: value for key, value in backbone_cfg.items() if key != "init_cfg"}
    generator = torch.Generator().manual_seed(int(plain["depth"]))
    state = {key: torch.rand(value.shape, generator=generator) + 0.5
             for key, value in MODELS.build(plain).state_dict().items() if value.is_floating_point()}
    state.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    return state


def _write_pretrained(init_cfg: dict, state: dict[str, torch.Tensor]) -> None:
    """Put ``state`` where ``init_cfg['checkpoint']`` resolves (cwd is the test's folder)."""
    name = init_cfg["checkpoint"]
    if name.startswith(TORCHVISION_PREFIX):
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(torchvision_url(name[len(TORCHVISION_PREFIX):])).name
        payload: dict = state
    else:
        path = Path(name)
        payload = {"state_dict": {f"{init_cfg.get('prefix') or ''}{key}": value for key, value in state.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def _write_teacher(cfg: Config) -> None:
    """A teacher checkpoint (random weights) where the distiller config expects it."""
    teacher = MODELS.build(load_detector_config(cfg.model.teacher_cfg, "teacher").model)
    path = Path(cfg.model.teacher_ckpt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": teacher.state_dict()}, path)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory that sees the repository's configs, and an empty torch hub."""
    (tmp_path / "projects").symlink_to(ROOT / "projects")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


def test_every_shipped_config_is_covered() -> None:
    assert len(CONFIGS) >= 13 and any("StreamPETR" in path for path in CONFIGS)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_backbone_init_cfg_is_loaded(config: str, sandbox: Path) -> None:
    cfg = load_config(ROOT / config)
    backbone_cfg = _backbone_cfg(cfg)
    init_cfg: Optional[dict] = backbone_cfg.get("init_cfg")
    expected = _known_weights(backbone_cfg)
    if init_cfg is not None:
        _write_pretrained(dict(init_cfg), expected)
    if cfg.model.type == "HarmoDistiller":
        _write_teacher(cfg)
    files_before = set(sandbox.rglob("*.pth"))
    model = build_model(cfg)
    backbone = (model.student if cfg.model.type == "HarmoDistiller" else model).img_backbone
    loaded = {key: value for key, value in backbone.state_dict().items() if value.is_floating_point()}
    assert set(sandbox.rglob("*.pth")) == files_before, "building the model downloaded or wrote a file"
    if init_cfg is None:
        assert not any(torch.equal(loaded[key], expected[key]) for key in loaded)
        return
    mismatched = [key for key in loaded if not torch.equal(loaded[key], expected[key])]
    assert not mismatched, f"{config}: {len(mismatched)} backbone tensors not from {init_cfg['checkpoint']}: {mismatched[:3]}"
    assert os.environ["TORCH_HOME"].startswith(str(sandbox))
