"""Convert a distiller checkpoint to its student: a plain detector checkpoint.

A distiller's state dict holds ``student.*``, ``teacher.*``, ``adapters.*`` and
``distill_losses.*``; engine checkpoints nest it under ``'state_dict'`` next to optimizer,
scheduler, loop, RNG and memory-queue states. The export keeps ``student.*`` without the
prefix and drops everything else (upstream HarmoDistill checkpoints also carry recorded
feature buffers named ``student_*`` / ``teacher_*``: dropped as ``other``). The result
loads with ``strict=True`` into the student detector built from its own config.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..core.checkpoint import (CheckpointError, apply_state_dict, numpy_safe_globals, read_checkpoint,
                               save_checkpoint, split_checkpoint)
from ..models.detectors.base import build_detector
from .distillers.detector_configs import student_model_config

STUDENT_PREFIX = "student."
#: Prefixes of the distiller's other parts, by group name.
DROPPED_GROUPS = {"teacher": "teacher.", "adapters": "adapters.", "distill_losses": "distill_losses."}
OTHER_GROUP = "other"


@dataclass
class ConversionReport:
    """What :func:`convert_distiller_checkpoint` wrote and left out."""

    dst_path: Path
    kept: int
    dropped: dict[str, int]
    dropped_entries: list[str] = field(default_factory=list)
    verified_with: Optional[str] = None

    def summary(self) -> str:
        """Human-readable counts, one item per line."""
        lines = [f"wrote {self.dst_path}: kept {self.kept} student keys"]
        lines += [f"dropped {count} {group} keys" for group, count in self.dropped.items() if count]
        if self.dropped_entries:
            lines.append(f"dropped checkpoint entries: {', '.join(self.dropped_entries)}")
        if self.verified_with:
            lines.append(f"strict load into the student of {self.verified_with}: OK")
        return "\n".join(lines)


def extract_student_state_dict(distiller_state_dict: Mapping[str, torch.Tensor]
                               ) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Split a distiller state dict into the student's (prefix removed) and the rest.

    Args:
        distiller_state_dict: key → tensor, keys ``student.*``, ``teacher.*``, ...

    Returns:
        ``(student_state_dict, dropped_keys_by_group)`` with groups ``teacher``,
        ``adapters``, ``distill_losses`` and ``other``.

    Raises:
        CheckpointError: there is no ``student.*`` key (not a distiller state dict).
    """
    student: dict[str, torch.Tensor] = {}
    dropped: dict[str, list[str]] = {group: [] for group in (*DROPPED_GROUPS, OTHER_GROUP)}
    for key, value in distiller_state_dict.items():
        if key.startswith(STUDENT_PREFIX):
            student[key[len(STUDENT_PREFIX):]] = value
            continue
        group = next((g for g, prefix in DROPPED_GROUPS.items() if key.startswith(prefix)), OTHER_GROUP)
        dropped[group].append(key)
    if not student:
        sample = list(distiller_state_dict)[:5]
        raise CheckpointError(
            "not a distiller checkpoint: no 'student.*' keys (first keys: "
            f"{sample}). A plain detector checkpoint needs no conversion; give the checkpoint "
            "written by tools/distillation.py")
    return student, dropped


def verify_student_load(student_state_dict: Mapping[str, torch.Tensor], cfg: Any, source: str) -> None:
    """Build the student of ``cfg`` (a detector or distiller config) and load strictly."""
    student = build_detector(student_model_config(cfg), "the student config")
    apply_state_dict(student, student_state_dict, strict=True, source=source)


def convert_distiller_checkpoint(src_path: Union[str, os.PathLike], dst_path: Union[str, os.PathLike],
                                 cfg: Any = None, cfg_name: Optional[str] = None) -> ConversionReport:
    """Write the student of distiller checkpoint ``src_path`` to ``dst_path`` (atomically).

    Args:
        src_path: an engine (or upstream HarmoDistill) distiller checkpoint.
        dst_path: the output, ``{'state_dict': student keys, 'meta': {...}}``.
        cfg: optional config (plain student config or distiller config) to prove a strict
            load into the student detector before writing.
        cfg_name: the config's name for the report.
    """
    raw = read_checkpoint(src_path, allowed_globals=numpy_safe_globals())
    state_dict, entries = split_checkpoint(raw, source=f"checkpoint '{src_path}'")
    student, dropped = extract_student_state_dict(state_dict)
    if cfg is not None:
        verify_student_load(student, cfg, source=f"student of '{src_path}'")
    meta = {
        "converted_from": str(src_path),
        "tool": "tools/distill_convert.py",
        "kept_keys": len(student),
        "dropped_keys": {group: len(keys) for group, keys in dropped.items()},
    }
    if isinstance(entries.get("global_step"), int):
        meta["global_step"] = entries["global_step"]
    path = save_checkpoint({"state_dict": student, "meta": meta}, dst_path)
    return ConversionReport(path, len(student), meta["dropped_keys"], sorted(entries),
                            cfg_name if cfg is not None else None)


def is_distiller_checkpoint(path: Union[str, os.PathLike]) -> bool:
    """Whether the checkpoint file holds a distiller's state dict (``student.*`` and
    ``teacher.*`` keys) rather than a detector's. Only the keys are read (``mmap``)."""
    raw = read_checkpoint(path, allowed_globals=numpy_safe_globals(), mmap=True)
    state_dict, _ = split_checkpoint(raw, source=f"checkpoint '{path}'")
    return (any(k.startswith(STUDENT_PREFIX) for k in state_dict)
            and any(k.startswith(DROPPED_GROUPS["teacher"]) for k in state_dict))
