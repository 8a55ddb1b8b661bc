"""The labelled subset of label-scarce training: deterministic, order-free, seeded, validated."""
from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.labelled_subset import (check_labelled_options, empty_annotations,
                                                              labelled_mask, labelled_score)

# nuScenes-like tokens: 32 hex digits.
TOKENS = [hashlib.md5(str(i).encode()).hexdigest() for i in range(600)]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_share_of_labelled_frames_is_the_fraction(fraction: float) -> None:
    mask = labelled_mask(TOKENS, fraction, seed=0)
    assert mask.shape == (len(TOKENS),) and mask.dtype == bool
    # Binomial standard deviation <= 0.021 for 600 frames: 0.06 is about 3 of them.
    assert abs(mask.mean() - fraction) < 0.06


def test_subset_is_deterministic_and_independent_of_order() -> None:
    mask = labelled_mask(TOKENS, 0.25, seed=3)
    assert np.array_equal(mask, labelled_mask(list(TOKENS), 0.25, seed=3))
    order = list(range(len(TOKENS)))
    random.Random(0).shuffle(order)
    assert np.array_equal(labelled_mask([TOKENS[i] for i in order], 0.25, seed=3), mask[order])
    assert np.array_equal(labelled_mask(TOKENS[100:200], 0.25, seed=3), mask[100:200])
    # The hash is fixed (blake2b), not Python's per-process hash(): these values never change.
    assert labelled_score("e93e98b63d3b40209056d129dc53ceee", 0) == 0.3898232452881405
    assert labelled_score("e93e98b63d3b40209056d129dc53ceee", 1) == 0.908935981966311


def test_seed_changes_the_subset_and_subsets_are_nested() -> None:
    seed0, seed1 = labelled_mask(TOKENS, 0.25, seed=0), labelled_mask(TOKENS, 0.25, seed=1)
    assert not np.array_equal(seed0, seed1)
    assert (seed0 & seed1).sum() < seed0.sum()
    half = labelled_mask(TOKENS, 0.5, seed=0)
    assert (half | seed0).sum() == half.sum()  # the 25 % subset lies inside the 50 % one
    assert labelled_mask(TOKENS, 1.0, seed=7).all()
    assert labelled_mask([], 0.5, seed=0).shape == (0,)


def test_empty_annotations_keep_shapes_and_dtypes() -> None:
    annotations = dict(
        gt_bboxes_3d=np.ones((3, 9), np.float32), gt_labels_3d=np.arange(3), gt_names=np.array(["car"] * 3),
        gt_bboxes=[np.ones((2, 4), np.float32)] * 6, gt_labels=[np.arange(2)] * 6,
        centers2d=[np.ones((2, 2), np.float32)] * 6, depths=[np.ones(2, np.float32)] * 6,
    )
    empty = empty_annotations(annotations)
    assert set(empty) == set(annotations)
    for key, value in annotations.items():
        if isinstance(value, list):
            assert len(empty[key]) == 6
            assert all(e.shape == (0,) + v.shape[1:] and e.dtype == v.dtype for e, v in zip(empty[key], value))
        else:
            assert empty[key].shape == (0,) + value.shape[1:] and empty[key].dtype == value.dtype
    assert annotations["gt_bboxes_3d"].shape == (3, 9)  # the input is left alone


@pytest.mark.parametrize("fraction, seed, test_mode, error, message", [
    (0.0, 0, False, ValueError, "labelled_fraction must be a number in \\(0, 1\\]"),
    (1.5, 0, False, ValueError, "got 1.5"),
    ("0.25", 0, False, ValueError, "got '0.25'"),
    (True, 0, False, ValueError, "got True"),
    (0.25, 0.5, False, TypeError, "labelled_seed must be an int"),
    (0.25, 0, True, ValueError, "test_mode dataset"),
])
def test_bad_options_raise(fraction, seed, test_mode: bool, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        check_labelled_options(fraction, seed, test_mode)


def test_good_options_pass() -> None:
    check_labelled_options(0.25, 0, False)
    check_labelled_options(1, np.int64(3), False)
    check_labelled_options(1.0, 0, True)
