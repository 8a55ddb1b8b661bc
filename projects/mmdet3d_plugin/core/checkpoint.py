"""Reading, checking and writing checkpoint files.

Every file is read with ``torch.load(..., weights_only=True)``: only tensors and plain
containers are unpickled. Published mmcv/mmdet checkpoints also carry a ``meta`` dict that
may hold numpy scalars and arrays; loading those needs an explicit allow-list of named
types, passed as ``allowed_globals`` (applied through
``torch.serialization.safe_globals``)::

    meta = load_checkpoint(model, "ckpts/raydn_r50.pth", allowed_globals=numpy_safe_globals())

Nothing here ever falls back to ``weights_only=False``.
"""
from __future__ import annotations

import difflib
import errno
import importlib
import logging
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

#: How many keys of each kind a mismatch report lists before it only counts them.
MISMATCH_LIST_LIMIT = 10

#: Keys under which training frameworks nest the state dict of a checkpoint file.
STATE_DICT_WRAPPERS = ("state_dict", "model")

_READ_ERROR_MARKERS = (
    "PytorchStreamReader",
    "zip archive",
    "invalid load key",
    "truncated",
    "Invalid magic number",
)
_UNSAFE_MARKERS = ("Unsupported global", "add_safe_globals")


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read or does not fit the model."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds objects that ``weights_only`` loading refuses to unpickle."""


def numpy_safe_globals() -> tuple[Any, ...]:
    """The numpy types needed to unpickle numpy scalars and arrays with ``weights_only``.

    mmcv checkpoints keep numpy values in their ``meta`` dict; pass this tuple as
    ``allowed_globals`` to accept them. Object arrays stay refused (their elements are
    arbitrary pickled objects).
    """
    multiarray = importlib.import_module(
        "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
    )
    dtype_classes = tuple(
        getattr(np.dtypes, name) for name in sorted(dir(np.dtypes)) if name.endswith("DType")
    )
    return (multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype) + dtype_classes


def read_checkpoint(
    path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    allowed_globals: Iterable[Any] = (),
    mmap: bool = False,
) -> Any:
    """Unpickle a checkpoint file with ``weights_only=True``.

    Args:
        path: the file.
        map_location: where tensors are placed.
        allowed_globals: extra types/functions the unpickler may build (see module doc).
        mmap: map the file instead of reading it (tensors are read only when touched; for
            callers that need a few entries of a large checkpoint).

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file holds types that are not allow-listed.
        CheckpointError: the file is truncated, corrupt or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: '{path}'")
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if any(marker in str(err) for marker in _UNSAFE_MARKERS):
            raise UnsafeCheckpointError(_unsafe_message(path, err)) from err
        raise CheckpointError(_unreadable_message(path, err)) from err
    except (EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(_unreadable_message(path, err)) from err
    except RuntimeError as err:
        if any(marker in str(err) for marker in _READ_ERROR_MARKERS):
            raise CheckpointError(_unreadable_message(path, err)) from err
        raise


def _reader_said(err: BaseException) -> str:
    """The informative part of a torch.load error (its weights-unpickler line if any)."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _unreadable_message(path: Path, err: BaseException) -> str:
    size = path.stat().st_size
    return (
        f"cannot read checkpoint '{path}' ({size} bytes): the file is truncated, corrupt or "
        f"not a PyTorch checkpoint (an interrupted download leaves such a file; fetch it "
        f"again). Reader said: {_reader_said(err)}"
    )


def _unsafe_message(path: Path, err: BaseException) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, ValueError, pickle.UnpicklingError):
        names = []
    found = ", ".join(names) if names else "see the reader's message below"
    return (
        f"checkpoint '{path}' holds objects other than tensors and plain containers "
        f"({found}); it is loaded with torch.load(weights_only=True), which refuses them. "
        f"If you trust the file, pass allowed_globals=(...) naming exactly those types "
        f"(numpy_safe_globals() covers numpy scalars and arrays in an mmcv 'meta' dict). "
        f"Reader said: {_reader_said(err)}"
    )


def split_checkpoint(obj: Any, source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict]:
    """Separate the state dict of a loaded checkpoint from its other entries.

    Args:
        obj: what :func:`read_checkpoint` returned: a bare state dict, or a dict that
            nests it under ``'state_dict'`` or ``'model'``.
        source: a name for error messages (usually the file).

    Returns:
        ``(state_dict, metadata)``; ``metadata`` holds the remaining top-level entries
        (``meta``, ``optimizer``, ...) and is empty for a bare state dict.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source} holds a {type(obj).__name__}, expected a dict (a state dict, or a "
            f"dict with one of the keys {list(STATE_DICT_WRAPPERS)})"
        )
    for key in STATE_DICT_WRAPPERS:
        if key in obj and isinstance(obj[key], Mapping):
            metadata = {k: v for k, v in obj.items() if k != key}
            return _tensor_dict(obj[key], source), metadata
    return _tensor_dict(obj, source), {}


def _tensor_dict(state: Mapping, source: str) -> dict[str, torch.Tensor]:
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{source} is not a state dict: {len(bad)} entries are not tensors "
            f"(e.g. {bad[:5]}); expected a dict of tensors, possibly nested under one of "
            f"{list(STATE_DICT_WRAPPERS)}"
        )
    return dict(state)


def revise_state_dict_keys(
    state_dict: Mapping[str, torch.Tensor], revise_keys: Sequence[tuple[str, str]]
) -> dict[str, torch.Tensor]:
    """Rename keys with ``re.sub(pattern, replacement, key)`` for each pair, in order."""
    revised = dict(state_dict)
    for pattern, replacement in revise_keys:
        revised = {re.sub(pattern, replacement, k): v for k, v in revised.items()}
    return revised


def describe_state_dict_mismatch(
    expected: Mapping[str, torch.Tensor | torch.Size | Sequence[int]],
    got: Mapping[str, torch.Tensor],
) -> str:
    """Describe how a state dict differs from the expected keys and shapes.

    Args:
        expected: key → tensor (or its shape) the receiver needs.
        got: key → tensor offered.

    Returns:
        A multi-line report of missing, unexpected and shape-mismatched keys (the first
        :data:`MISMATCH_LIST_LIMIT` of each, with counts; close matches for missing keys),
        or ``""`` when keys and shapes agree.
    """
    expected_shapes = {k: _shape_of(v) for k, v in expected.items()}
    missing = [k for k in expected_shapes if k not in got]
    unexpected = [k for k in got if k not in expected_shapes]
    mismatched = [
        k for k in expected_shapes if k in got and tuple(got[k].shape) != expected_shapes[k]
    ]
    lines: list[str] = []
    if missing:
        lines.append(f"missing keys ({len(missing)}):")
        for key in missing[:MISMATCH_LIST_LIMIT]:
            close = difflib.get_close_matches(key, unexpected or list(got), n=3, cutoff=0.6)
            hint = f"  (close matches in the file: {close})" if close else ""
            lines.append(f"  {key}{hint}")
        lines.extend(_more(len(missing)))
    if unexpected:
        lines.append(f"unexpected keys ({len(unexpected)}):")
        lines.extend(f"  {key}" for key in unexpected[:MISMATCH_LIST_LIMIT])
        lines.extend(_more(len(unexpected)))
    if mismatched:
        lines.append(f"shape mismatches ({len(mismatched)}):")
        lines.extend(
            f"  {k}: expected {list(expected_shapes[k])}, got {list(got[k].shape)}"
            for k in mismatched[:MISMATCH_LIST_LIMIT]
        )
        lines.extend(_more(len(mismatched)))
    return "\n".join(lines)


def _shape_of(value: torch.Tensor | torch.Size | Sequence[int]) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value)


def _more(count: int) -> list[str]:
    extra = count - MISMATCH_LIST_LIMIT
    return [f"  ... and {extra} more"] if extra > 0 else []


def apply_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    source: str = "state dict",
) -> str:
    """Copy ``state_dict`` into ``model``, checking keys and shapes first.

    Args:
        model: the receiver.
        state_dict: key → tensor.
        strict: raise on any missing, unexpected or shape-mismatched key. When False,
            matching entries are loaded, the rest are skipped and logged. A missing
            BatchNorm ``num_batches_tracked`` counter is never an error (files saved before
            torch 0.4.1, e.g. torchvision's ImageNet weights, lack it; BatchNorm keeps its
            own value, as ``torch.nn.Module.load_state_dict`` does for such files).
        source: a name for messages (usually the file).

    Returns:
        The mismatch report (``""`` when everything matched).

    Raises:
        CheckpointError: ``strict`` and the keys or shapes differ.
    """
    expected = {
        k: v for k, v in model.state_dict().items()
        if k in state_dict or not k.endswith(".num_batches_tracked")
    }
    report = describe_state_dict_mismatch(expected, state_dict)
    if report and strict:
        raise CheckpointError(
            f"{source} does not match {type(model).__name__} (strict loading):\n{report}"
        )
    loadable = {
        k: v for k, v in state_dict.items() if k in expected and v.shape == expected[k].shape
    }
    model.load_state_dict(loadable, strict=not report)
    if report:
        logger.warning("loaded %s into %s non-strictly:\n%s", source, type(model).__name__, report)
    return report


def load_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
    revise_keys: Sequence[tuple[str, str]] = ((r"^module\.", ""),),
    allowed_globals: Iterable[Any] = (),
) -> dict:
    """Load a checkpoint file into ``model``.

    The file may hold a bare state dict or nest it under ``'state_dict'`` / ``'model'``;
    keys are renamed by ``revise_keys`` (regex, replacement) pairs, by default stripping a
    DDP ``module.`` prefix.

    Args:
        model: the receiver.
        path: the checkpoint file.
        strict: see :func:`apply_state_dict`.
        map_location: where tensors are placed.
        revise_keys: key renames applied before loading.
        allowed_globals: named types the ``weights_only`` unpickler may build, e.g.
            :func:`numpy_safe_globals` for mmcv ``meta`` dicts.

    Returns:
        The file's other top-level entries (``meta``, ``optimizer``, ...); ``{}`` for a
        bare state dict.
    """
    raw = read_checkpoint(path, map_location=map_location, allowed_globals=allowed_globals)
    state_dict, metadata = split_checkpoint(raw, source=f"checkpoint '{path}'")
    state_dict = revise_state_dict_keys(state_dict, revise_keys)
    apply_state_dict(model, state_dict, strict=strict, source=f"checkpoint '{path}'")
    return metadata


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` atomically.

    The data goes to a temporary file in the destination folder, is flushed to disk
    (``fsync``) and then renamed over ``path``; an interrupted save never leaves a
    truncated checkpoint behind. Missing parent folders are created.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=SAVE_FRAGMENT_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as err:
        Path(tmp_name).unlink(missing_ok=True)
        if _is_disk_full(err):
            raise CheckpointError(_disk_full_message(path)) from err
        raise
    _fsync_dir(path.parent)
    return path


#: How the temporary file of :func:`save_checkpoint` is named, with ``{name}`` the final
#: file name (``tempfile.mkstemp``: 8 random characters): a process killed while saving
#: leaves it behind (the rename never happened).
SAVE_FRAGMENT_SUFFIX = ".tmp"
SAVE_FRAGMENT_REGEX = r"\.{name}\.[a-z0-9_]{{8}}" + re.escape(SAVE_FRAGMENT_SUFFIX)


_DISK_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` or an error it chains (torch's writer wraps the ``OSError``) is ENOSPC."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return True
        todo.extend((current.__cause__, current.__context__))
    return False


def _disk_full_message(path: Path) -> str:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free there now"
    except OSError:
        free = "free space unknown"
    return (f"disk full: no space left to write checkpoint '{path}' ({free}); the previous "
            f"checkpoints are intact. Free space (or keep fewer checkpoints: "
            f"checkpoint_config.max_keep_ckpts), then continue with --resume.")


def _fsync_dir(folder: Path) -> None:
    """Persist a rename on POSIX file systems; a no-op where folders cannot be opened."""
    if os.name != "posix":
        return
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
