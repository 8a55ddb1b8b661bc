"""The detector configs a distiller is made of, and the checks that teacher and student agree.

A teacher or student is given either as a config file (its ``model`` section is used, and
its ``class_names`` / ``point_cloud_range`` when present) or directly as a model dict. Config
paths are read relative to the working directory first, then to the repository root, so
``'projects/configs/RayDN/...'`` works from anywhere.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from mmengine.config import Config, ConfigDict
from torch import nn

from ...paths import REPO_ROOT

ConfigSource = Union[str, Path, Mapping[str, Any]]


@dataclass(frozen=True)
class DetectorConfig:
    """A detector's model dict and the dataset facts its config states.

    Attributes:
        model: the ``model`` dict (``type='RepDetr3D'``, ...), a plain dict.
        class_names: ``class_names`` of the config file, or None (model dicts carry none).
        point_cloud_range: ``point_cloud_range`` of the config file, or None.
        source: the file path, or ``'<model dict>'`` (for messages).
    """

    model: dict
    class_names: Optional[tuple[str, ...]]
    point_cloud_range: Optional[tuple[float, ...]]
    source: str


def resolve_config_path(path: Union[str, Path], role: str) -> Path:
    """The config file ``path`` (relative to the working directory or the repository root)."""
    path = Path(path)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{role} config not found: '{path}' (tried {tried})")


def _plain(value: Any) -> Any:
    """A ``ConfigDict`` (and nested ones) as plain dicts."""
    return value.to_dict() if isinstance(value, ConfigDict) else copy.deepcopy(value)


def load_detector_config(source: ConfigSource, role: str,
                         options: Optional[Mapping[str, Any]] = None) -> DetectorConfig:
    """Read a teacher / student given as a config path or a model dict.

    Args:
        source: a config file path, or a model dict with a ``type``.
        role: ``'teacher'`` or ``'student'`` (for messages).
        options: ``--cfg-options``-style overrides applied to the config file before its
            ``model`` section is taken (``{'model.img_neck.in_channels': [256, 512]}``;
            ``_delete_=True`` replaces a section). Only for config files.
    """
    if isinstance(source, Mapping):
        if options:
            raise ValueError(f"{role}_cfg_options apply to a {role} config file, but {role}_cfg is a "
                             "model dict; edit the dict instead")
        if "type" not in source:
            raise KeyError(f"{role}_cfg as a dict must be a model dict with a 'type' (e.g. "
                           f"type='RepDetr3D'), got keys {sorted(source)}")
        return DetectorConfig(_plain(source), None, None, "<model dict>")
    path = resolve_config_path(source, role)
    cfg = Config.fromfile(str(path))
    if options:
        # merge_from_dict consumes the '_delete_' markers of what it is given: merge a copy,
        # so the same options give the same config every time they are read.
        cfg.merge_from_dict(copy.deepcopy(dict(options)))
    if "model" not in cfg:
        raise KeyError(f"{role} config {path} has no 'model' section")
    names = cfg.get("class_names")
    pc_range = cfg.get("point_cloud_range")
    return DetectorConfig(
        model=_plain(cfg.model),
        class_names=None if names is None else tuple(names),
        point_cloud_range=None if pc_range is None else tuple(float(v) for v in pc_range),
        source=str(source),
    )


def student_model_config(cfg: Union[Config, Mapping[str, Any]]) -> dict:
    """The student's model dict of a plain detector config or of a distiller config.

    A distiller config (``model.type`` names a class with a ``student_cfg`` argument, like
    ``HarmoDistiller``) gives its ``student_cfg`` (plus ``student_cfg_options``); any other
    config is the student itself.
    """
    model = cfg["model"] if "model" in cfg else None
    if model is None:
        raise KeyError("the config has no 'model' section")
    if "student_cfg" not in model:
        return _plain(model)
    return load_detector_config(model["student_cfg"], "student", model.get("student_cfg_options")).model


def _head_attr(model: nn.Module, attr: str) -> Any:
    """``model.pts_bbox_head.<attr>`` or None when the detector has no such attribute."""
    head = getattr(model, "pts_bbox_head", None)
    return None if head is None else getattr(head, attr, None)


def _as_tuple(value: Any) -> Optional[tuple[float, ...]]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    return tuple(round(float(v), 6) for v in value)


def _compare(problems: list[str], what: str, teacher: Any, student: Any) -> None:
    if teacher is not None and student is not None and teacher != student:
        problems.append(f"{what}: teacher {list(teacher)} vs student {list(student)}")


def check_compatible(teacher: nn.Module, student: nn.Module,
                     teacher_cfg: DetectorConfig, student_cfg: DetectorConfig) -> None:
    """Raise ``ValueError`` unless teacher and student detect the same classes in the same range.

    Compares the heads' ``num_classes`` and ``pc_range`` and, where both configs state them,
    ``class_names`` and ``point_cloud_range`` (class order matters: labels are indices).
    """
    problems: list[str] = []
    t_classes, s_classes = _head_attr(teacher, "num_classes"), _head_attr(student, "num_classes")
    if t_classes is not None and s_classes is not None and t_classes != s_classes:
        problems.append(f"pts_bbox_head.num_classes: teacher {t_classes} vs student {s_classes}")
    _compare(problems, "class_names", teacher_cfg.class_names, student_cfg.class_names)
    _compare(problems, "pts_bbox_head.pc_range", _as_tuple(_head_attr(teacher, "pc_range")),
             _as_tuple(_head_attr(student, "pc_range")))
    _compare(problems, "point_cloud_range", _as_tuple(teacher_cfg.point_cloud_range),
             _as_tuple(student_cfg.point_cloud_range))
    if problems:
        raise ValueError(
            f"teacher ({teacher_cfg.source}) and student ({student_cfg.source}) disagree: "
            + "; ".join(problems) + ". A distilled student must predict the teacher's classes "
            "in the teacher's point-cloud range.")

