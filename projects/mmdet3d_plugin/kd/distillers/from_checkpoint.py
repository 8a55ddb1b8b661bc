"""Building a HarmoDistiller from one of its own checkpoints (for tools that only run it).

A distiller checkpoint already holds the trained teacher (``teacher.*``), so a tool that
loads such a checkpoint (visualisation, inspection) needs no separate teacher file::

    distiller = build_distiller_from_checkpoint(cfg.model, "work_dirs/distilled/latest.pth")

builds ``cfg.model`` with ``load_teacher=False`` (``model.teacher_ckpt`` may point to a file
that is not there) and loads the whole checkpoint strictly. A checkpoint without
``teacher.*`` keys needs ``model.teacher_ckpt`` on disk, as in training; when it is missing
too, the error says which of the two to fix.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import torch

from ...core.checkpoint import (CheckpointError, apply_state_dict, numpy_safe_globals, read_checkpoint,
                                revise_state_dict_keys, split_checkpoint)
from ...registry import MODELS
from .harmo_distiller import HarmoDistiller

TEACHER_PREFIX = "teacher."
STUDENT_PREFIX = "student."


def read_state_dict(path: Union[str, Path]) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file (nested ``state_dict`` / ``model`` unwrapped, a DDP
    ``module.`` prefix stripped; numpy ``meta`` entries allowed)."""
    raw = read_checkpoint(path, allowed_globals=numpy_safe_globals())
    state_dict, _ = split_checkpoint(raw, source=f"checkpoint '{path}'")
    return revise_state_dict_keys(state_dict, ((r"^module\.", ""),))


def holds_teacher(state_dict: Mapping[str, Any]) -> bool:
    """Whether ``state_dict`` carries the teacher's weights (``teacher.*`` keys)."""
    return any(key.startswith(TEACHER_PREFIX) for key in state_dict)


def _check_is_distiller(state_dict: Mapping[str, Any], path: Union[str, Path]) -> None:
    """``CheckpointError`` when ``state_dict`` is a plain detector's (no ``student.*`` keys)."""
    if not any(key.startswith(STUDENT_PREFIX) for key in state_dict):
        raise CheckpointError(
            f"checkpoint '{path}' holds no 'student.*' keys: it is a plain detector checkpoint "
            "(e.g. a converted student.pth), not a distiller's; give it with the detector's own "
            "config (e.g. the student config), not the distillation config")


def _missing_teacher_error(path: Union[str, Path], teacher_ckpt: Any) -> FileNotFoundError:
    return FileNotFoundError(
        f"checkpoint '{path}' holds no 'teacher.*' keys and the teacher checkpoint "
        f"model.teacher_ckpt='{teacher_ckpt}' is not there either. Give the distiller's own "
        "checkpoint (work_dirs/<run>/latest.pth holds the teacher), or point "
        "--cfg-options model.teacher_ckpt=... at the teacher's .pth")


def build_distiller_from_checkpoint(model_cfg: Mapping[str, Any], checkpoint: Union[str, Path]
                                    ) -> HarmoDistiller:
    """Build the ``HarmoDistiller`` of ``model_cfg`` and load ``checkpoint`` into it strictly.

    Args:
        model_cfg: the config's ``model`` dict (``type='HarmoDistiller'``); not modified.
        checkpoint: a distiller checkpoint (``student.*``, ``teacher.*``, ...).

    Returns:
        The distiller in eval mode. When the checkpoint holds ``teacher.*`` keys the teacher
        comes from them and ``model_cfg['teacher_ckpt']`` is not read.

    Raises:
        ValueError: ``model_cfg`` is not a HarmoDistiller.
        CheckpointError: a plain detector checkpoint, or keys that do not fit.
        FileNotFoundError: no ``teacher.*`` keys and no teacher file.
    """
    if model_cfg.get("type") not in ("HarmoDistiller", HarmoDistiller):
        raise ValueError(f"build_distiller_from_checkpoint needs model.type='HarmoDistiller', "
                         f"got {model_cfg.get('type')!r}")
    state_dict = read_state_dict(checkpoint)
    _check_is_distiller(state_dict, checkpoint)
    cfg = copy.deepcopy(dict(model_cfg))
    if holds_teacher(state_dict):
        cfg["load_teacher"] = False
    elif not (cfg.get("teacher_ckpt") and Path(cfg["teacher_ckpt"]).is_file()):
        raise _missing_teacher_error(checkpoint, cfg.get("teacher_ckpt"))
    distiller = MODELS.build(cfg)
    if not holds_teacher(state_dict):  # the teacher came from teacher_ckpt: keep it, check the rest
        teacher = {f"{TEACHER_PREFIX}{key}": value for key, value in distiller.teacher.state_dict().items()}
        state_dict = {**teacher, **state_dict}
    apply_state_dict(distiller, state_dict, strict=True, source=f"checkpoint '{checkpoint}'")
    return distiller.eval()
