"""PadMultiViewImage."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.pipelines.pad import PadMultiViewImage


def test_pads_bottom_right_to_a_multiple() -> None:
    imgs = [np.ones((65, 100, 3), dtype=np.float32) for _ in range(6)]
    out = PadMultiViewImage(size_divisor=32, pad_val=-1)(dict(img=imgs))
    assert out["img_shape"] == (65, 100) and out["pad_shape"] == (96, 128)
    assert out["img"][0].shape == (96, 128, 3)
    assert (out["img"][0][:65, :100] == 1).all() and (out["img"][0][65:] == -1).all()
    assert (out["img"][0][:, 100:] == -1).all()
    same = PadMultiViewImage(size_divisor=5)(dict(img=[np.ones((10, 20, 3))]))
    assert same["pad_shape"] == (10, 20)


def test_fixed_size_and_errors() -> None:
    out = PadMultiViewImage(size=(70, 110))(dict(img=[np.zeros((65, 100, 3))]))
    assert out["pad_shape"] == (70, 110)
    with pytest.raises(ValueError, match="smaller"):
        PadMultiViewImage(size=(60, 110))(dict(img=[np.zeros((65, 100, 3))]))
    with pytest.raises(ValueError, match="exactly one"):
        PadMultiViewImage(size=(1, 1), size_divisor=32)
    with pytest.raises(ValueError, match="one size"):
        PadMultiViewImage(size_divisor=32)(dict(img=[np.zeros((6, 10, 3)), np.zeros((6, 11, 3))]))
