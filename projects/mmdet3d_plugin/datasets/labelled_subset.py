"""The fixed subset of training frames that keeps its ground truth (label-scarce training).

A frame is labelled when a hash of ``(seed, sample token)``, read as a number in ``[0, 1)``,
is below the labelled fraction. The choice depends on nothing else — not the sampler, the
number of workers or ranks, the epoch or the order of the infos — so the same frames are
labelled in every epoch and in every run with the same seed, and the subsets of one seed are
nested (the 25 % subset lies inside the 50 % one). An unlabelled frame keeps its images and
poses but carries empty annotations (:func:`empty_annotations`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

_HASH_BYTES = 8


def labelled_score(token: str, seed: int) -> float:
    """The frame's hash ``blake2b(f'{seed}:{token}')`` as a number in ``[0, 1)``."""
    digest = hashlib.blake2b(f"{seed}:{token}".encode(), digest_size=_HASH_BYTES).digest()
    return int.from_bytes(digest, "big") / float(2 ** (8 * _HASH_BYTES))


def labelled_mask(tokens: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Which frames are labelled.

    Args:
        tokens: N sample tokens.
        fraction: share of labelled frames, in ``(0, 1]`` (1: every frame).
        seed: chooses the subset.

    Returns:
        (N,) bool; frame ``i`` is labelled iff ``labelled_score(tokens[i], seed) < fraction``.
    """
    return np.array([labelled_score(token, seed) < fraction for token in tokens], dtype=bool).reshape(-1)


def check_labelled_options(fraction: Any, seed: Any, test_mode: bool) -> None:
    """Raise a clear error for a bad ``labelled_fraction`` / ``labelled_seed`` of a dataset."""
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0.0 < float(fraction) <= 1.0:
        raise ValueError(
            f"labelled_fraction must be a number in (0, 1] (the share of training frames that keep "
            f"their ground truth, e.g. 0.25), got {fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"labelled_seed must be an int, got {seed!r} ({type(seed).__name__})")
    if test_mode and float(fraction) < 1.0:
        raise ValueError(
            f"labelled_fraction={fraction} is a training option: a test_mode dataset has no ground "
            f"truth to withhold; set labelled_fraction=1.0 (the default) on data.val / data.test"
        )


def _empty(value: Any) -> Any:
    """The same array / tensor with 0 rows, or a list of them (per camera) with 0 rows each."""
    if isinstance(value, (list, tuple)):
        return type(value)(_empty(item) for item in value)
    return value[:0]


def empty_annotations(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """The annotations of an unlabelled frame: every field with 0 rows, shapes and dtypes kept.

    Args:
        annotations: e.g. ``gt_bboxes_3d`` (M, 9), ``gt_labels_3d`` (M,), ``gt_names`` (M,) and
            per camera lists of N ``gt_bboxes`` (Mi, 4), ``gt_labels`` (Mi,), ``centers2d``
            (Mi, 2), ``depths`` (Mi,).

    Returns:
        the same keys: (0, 9), (0,), (0,) and lists of N (0, 4), (0,), (0, 2), (0,).
    """
    return {key: _empty(value) for key, value in annotations.items()}
