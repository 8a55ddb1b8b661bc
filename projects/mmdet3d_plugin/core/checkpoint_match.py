"""Loading a checkpoint into the tensors whose names and shapes match.

This is what mmcv's runner does with a config's ``load_from`` (``load_checkpoint(...,
strict=False)``): every tensor of the file whose key exists in the model with the same shape
overwrites the model's; a key with another shape is skipped; the model's other tensors keep
their values (e.g. an ImageNet backbone init). Released configs rely on it to start an R18/R34
student from an R50 detector checkpoint. :class:`LoadReport` says exactly what happened::

    report = load_matching_checkpoint(model, "ckpts/r50.pth", strict=False)
    print(report.summary())

Files are read with ``weights_only=True`` (:func:`~.checkpoint.read_checkpoint`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .checkpoint import (MISMATCH_LIST_LIMIT, CheckpointError, apply_state_dict, numpy_safe_globals,
                         read_checkpoint, revise_state_dict_keys, split_checkpoint)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class PrefixCounts:
    """What one top-level module (``img_backbone``, ``img_neck``, ...) got from a file.

    Attributes:
        loaded: tensors copied from the file.
        loaded_numel: their elements (parameters and buffers).
        skipped: tensors present in both under the same name with different shapes.
        missing: model tensors the file lacks.
        unexpected: file tensors the model lacks.
        model_tensors: tensors of the model under this prefix.
    """

    loaded: int
    loaded_numel: int
    skipped: int
    missing: int
    unexpected: int
    model_tensors: int


@dataclass(frozen=True)
class LoadReport:
    """The outcome of matching a checkpoint's tensors to a model's by name and shape.

    Attributes:
        source: what was loaded (for messages), usually the file path.
        loaded: key -> number of elements, for every tensor copied into the model.
        skipped: key -> ``(model shape, file shape)`` for names in both with different shapes.
        missing: model keys absent from the file (they keep their values).
        unexpected: file keys absent from the model (ignored).
    """

    source: str
    loaded: dict[str, int]
    skipped: dict[str, tuple[Shape, Shape]]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Every key of model and file matched by name and shape."""
        return not (self.skipped or self.missing or self.unexpected)

    def by_prefix(self) -> dict[str, PrefixCounts]:
        """Counts per top-level module (the key's first dotted component), sorted by name."""
        names = {_top(k) for k in (*self.loaded, *self.skipped, *self.missing, *self.unexpected)}
        counts = {}
        for name in sorted(names):
            loaded = _under(self.loaded, name)
            skipped, missing = len(_under(self.skipped, name)), len(_under(self.missing, name))
            counts[name] = PrefixCounts(
                loaded=len(loaded), loaded_numel=sum(self.loaded[k] for k in loaded),
                skipped=skipped, missing=missing, unexpected=len(_under(self.unexpected, name)),
                model_tensors=len(loaded) + skipped + missing)
        return counts

    def summary(self, list_limit: int = MISMATCH_LIST_LIMIT) -> str:
        """A readable table per top-level module, then the skipped keys with both shapes.

        Args:
            list_limit: how many skipped keys to list before only counting them.
        """
        lines = [f"loaded {len(self.loaded)} tensors ({sum(self.loaded.values()):,} elements) "
                 f"from {self.source}; skipped (shape) {len(self.skipped)}, missing "
                 f"{len(self.missing)}, unexpected {len(self.unexpected)}",
                 f"  {'module':<24}{'loaded':>8}{'of model':>10}{'elements':>14}{'skipped':>9}"
                 f"{'missing':>9}{'unexpected':>12}"]
        for name, c in self.by_prefix().items():
            lines.append(f"  {name:<24}{c.loaded:>8}{c.model_tensors:>10}{c.loaded_numel:>14,}"
                         f"{c.skipped:>9}{c.missing:>9}{c.unexpected:>12}")
        if self.skipped:
            lines.append("skipped (model shape <- file shape):")
            for key, (model_shape, file_shape) in list(self.skipped.items())[:list_limit]:
                lines.append(f"  {key}: {list(model_shape)} <- {list(file_shape)}")
            if len(self.skipped) > list_limit:
                lines.append(f"  ... and {len(self.skipped) - list_limit} more")
        return "\n".join(lines)


def _top(key: str) -> str:
    """The top-level module of a state-dict key (``img_backbone.conv1.weight`` -> ``img_backbone``)."""
    return key.split(".", 1)[0]


def _under(keys: Iterable[str], name: str) -> list[str]:
    """The keys of top-level module ``name``."""
    return [k for k in keys if _top(k) == name]


def match_state_dicts(
    model_shapes: Mapping[str, Sequence[int]],
    file_shapes: Mapping[str, Sequence[int]],
    source: str = "state dict",
) -> LoadReport:
    """Match two key -> shape maps (no tensors needed).

    Args:
        model_shapes: the receiver's keys and shapes, e.g. ``{k: v.shape for k, v in
            model.state_dict().items()}``.
        file_shapes: the offered keys and shapes.
        source: a name for the report.

    Returns:
        The report; ``loaded`` counts the elements of each matching tensor.
    """
    model = {k: tuple(int(s) for s in v) for k, v in model_shapes.items()}
    offered = {k: tuple(int(s) for s in v) for k, v in file_shapes.items()}
    loaded, skipped, missing = {}, {}, []
    for key, shape in model.items():
        if key not in offered:
            missing.append(key)
        elif offered[key] == shape:
            loaded[key] = int(torch.Size(shape).numel())
        else:
            skipped[key] = (shape, offered[key])
    unexpected = tuple(k for k in offered if k not in model)
    return LoadReport(source, loaded, skipped, tuple(missing), unexpected)


def load_matching_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    strict: bool = False,
    source: str = "state dict",
) -> LoadReport:
    """Copy the tensors of ``state_dict`` whose names and shapes match ``model``'s.

    Args:
        model: the receiver; its other tensors keep their values.
        state_dict: key -> tensor.
        strict: instead require every key to match (as :func:`~.checkpoint.apply_state_dict`,
            which tolerates only a missing BatchNorm ``num_batches_tracked``).
        source: a name for messages.

    Raises:
        CheckpointError: ``strict`` and the keys or shapes differ; or (not strict) no tensor
            matches at all, which is never a useful initialisation (e.g. detector keys
            offered to a distiller, whose keys start with ``student.``).
    """
    report = match_state_dicts({k: v.shape for k, v in model.state_dict().items()},
                               {k: v.shape for k, v in state_dict.items()}, source)
    if strict:
        apply_state_dict(model, state_dict, strict=True, source=source)
        return report
    if not report.loaded:
        raise CheckpointError(
            f"no tensor of {source} matches {type(model).__name__} by name and shape "
            f"(file keys e.g. {list(state_dict)[:3]}, model keys e.g. "
            f"{list(model.state_dict())[:3]}); is it a checkpoint of this kind of model? (A "
            "distiller's keys start with 'student.' / 'teacher.'.)")
    model.load_state_dict({k: state_dict[k] for k in report.loaded}, strict=False)
    return report


def load_matching_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    strict: bool = False,
    revise_keys: Sequence[tuple[str, str]] = ((r"^module\.", ""),),
    allowed_globals: Iterable[Any] | None = None,
) -> LoadReport:
    """Load a detector checkpoint file into the tensors of ``model`` that match it.

    Args:
        model: the receiver.
        path: a checkpoint file: a bare state dict, or one nested under ``'state_dict'`` /
            ``'model'`` (mmcv, Lightning).
        strict: require an exact match (see :func:`load_matching_state_dict`).
        revise_keys: ``(regex, replacement)`` renames, by default stripping DDP's ``module.``.
        allowed_globals: types the ``weights_only`` unpickler may build; default
            :func:`~.checkpoint.numpy_safe_globals` (numpy values in mmcv ``meta`` dicts).

    Returns:
        The report (also for ``strict``, where everything matched).

    Raises:
        FileNotFoundError, CheckpointError: the file is missing, truncated or not a state
            dict (the message names it), or it does not fit (see above).
    """
    source = f"checkpoint '{path}'"
    allowed = numpy_safe_globals() if allowed_globals is None else tuple(allowed_globals)
    raw = read_checkpoint(path, allowed_globals=allowed)
    state_dict, _ = split_checkpoint(raw, source=source)
    state_dict = revise_state_dict_keys(state_dict, revise_keys)
    return load_matching_state_dict(model, state_dict, strict=strict, source=source)
