"""Inheritance: start parts of the student from the trained teacher's weights.

When student and teacher share a part's architecture (e.g. the 3D head and the FPN output
convolutions of an R50 teacher and an R18 student with the same ``embed_dims``), the student
can start that part from the teacher's trained weights instead of a random initialisation
(the "inheriting strategy" of FGD). Only the student's parameters and buffers change: the
teacher stays frozen and the student trains them further as its own.

A prefix is a module path of both detectors (``'pts_bbox_head'``, ``'img_neck.fpn_convs'``).
Every tensor under it must exist in both with the same shape: a prefix that only partly fits
(e.g. ``'img_neck'``, whose lateral convolutions take the backbone's channels) is an error
naming the keys, never a silent partial copy.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...core.checkpoint import describe_state_dict_mismatch
from ..recorders.tap_manager import resolve_module


def check_inherit(prefixes: Sequence[str] | None) -> tuple[str, ...]:
    """``prefixes`` as a tuple of module paths (``None`` → none).

    Raises:
        TypeError: not a list of strings (e.g. a single string).
        ValueError: an empty path, a path listed twice, or one path inside another.
    """
    if prefixes is None:
        return ()
    if isinstance(prefixes, str) or not all(isinstance(p, str) for p in prefixes):
        raise TypeError(f"HarmoDistiller.inherit must be a list of module paths, got {prefixes!r}")
    prefixes = tuple(prefixes)
    if any(not p for p in prefixes):
        raise ValueError("HarmoDistiller.inherit: an empty module path would copy the whole "
                         "student; name the parts, e.g. ['pts_bbox_head']")
    repeated = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if repeated:
        raise ValueError(f"HarmoDistiller.inherit: {repeated} listed more than once; list each part once")
    nested = [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a + ".")]
    if nested:
        raise ValueError(f"HarmoDistiller.inherit: {nested[0][1]!r} is inside {nested[0][0]!r}; "
                         "list each part once")
    return prefixes


def inherit_from_teacher(student: nn.Module, teacher: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Copy the teacher's parameters and buffers under each prefix into the student.

    Args:
        student: the student detector (changed in place).
        teacher: the trained teacher detector (read only).
        prefixes: module paths present in both detectors.

    Returns:
        The copied state-dict keys, relative to the student (e.g. ``'pts_bbox_head.query_embedding.weight'``).

    Raises:
        KeyError: a prefix is not a module of the student or the teacher (close matches listed).
        ValueError: the tensors under a prefix differ in names or shapes (the report lists them).
    """
    copied: list[str] = []
    for prefix in prefixes:
        s_part = resolve_module(student, prefix, f"inherit '{prefix}' (student)")
        t_part = resolve_module(teacher, prefix, f"inherit '{prefix}' (teacher)")
        t_state = t_part.state_dict()
        report = describe_state_dict_mismatch(s_part.state_dict(), t_state)
        if report:
            raise ValueError(
                f"inherit '{prefix}': the student's and the teacher's '{prefix}' differ, so the "
                f"teacher's weights cannot start the student's; inherit narrower parts that "
                f"match (or none).\n{report}")
        with torch.no_grad():
            s_part.load_state_dict(t_state, strict=True)
        copied.extend(f"{prefix}.{key}" for key in t_state)
    return copied
