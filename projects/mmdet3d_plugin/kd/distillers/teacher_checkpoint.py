"""Finding and loading the teacher's checkpoint, with errors that say what went wrong.

The file must exist before anything is built (a missing teacher fails at once, not after
the data are prepared), must not be a distiller checkpoint, and must fit the teacher
strictly: every key present with its shape. A checkpoint of another detector (e.g. the
student's, given by mistake) is reported as such.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from torch import nn

from ...core.checkpoint import (CheckpointError, apply_state_dict, describe_state_dict_mismatch,
                                numpy_safe_globals, read_checkpoint, revise_state_dict_keys,
                                split_checkpoint)

DISTILLER_PREFIXES = ("student.", "teacher.")
_HOW_TO_GET = (
    "Download the published teacher weights into ckpts/ (docs/distillation.md lists the file "
    "names and where to get them), or train the teacher with tools/train.py {config} and give "
    "its checkpoint with --cfg-options model.teacher_ckpt=work_dirs/.../latest.pth")


def require_teacher_checkpoint(path: Union[str, Path, None], teacher_source: str) -> Path:
    """The teacher checkpoint path; ``FileNotFoundError`` naming it and how to get it."""
    if not path:
        raise FileNotFoundError("HarmoDistiller needs teacher_ckpt (the trained teacher's weights). "
                                + _HOW_TO_GET.format(config=teacher_source))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: '{path}' (teacher_ckpt of "
                                f"HarmoDistiller, teacher {teacher_source}). "
                                + _HOW_TO_GET.format(config=teacher_source))
    return path


def load_teacher_weights(teacher: nn.Module, path: Path, teacher_source: str) -> dict:
    """Load ``path`` into ``teacher`` strictly; returns the file's other entries (``meta``, ...).

    Raises:
        CheckpointError: a distiller checkpoint, or keys / shapes that do not fit the teacher
            (the report lists them with close matches).
    """
    raw = read_checkpoint(path, allowed_globals=numpy_safe_globals())
    state_dict, metadata = split_checkpoint(raw, source=f"teacher checkpoint '{path}'")
    state_dict = revise_state_dict_keys(state_dict, ((r"^module\.", ""),))
    if any(key.startswith(DISTILLER_PREFIXES) for key in state_dict):
        raise CheckpointError(
            f"teacher checkpoint '{path}' is a distiller checkpoint (keys 'student.*' / "
            "'teacher.*'); give the teacher detector's own checkpoint, or extract a detector "
            "with tools/distill_convert.py first")
    expected = teacher.state_dict()
    report = describe_state_dict_mismatch(
        {k: v for k, v in expected.items() if k in state_dict or not k.endswith("num_batches_tracked")},
        state_dict)
    if report:
        shared = len(set(expected) & set(state_dict))
        raise CheckpointError(
            f"teacher checkpoint '{path}' does not fit the teacher built from {teacher_source} "
            f"({type(teacher).__name__}; {shared} of {len(expected)} keys present). Is it another "
            f"model's checkpoint, e.g. the student's?\n{report}")
    apply_state_dict(teacher, state_dict, strict=True, source=f"teacher checkpoint '{path}'")
    return metadata
