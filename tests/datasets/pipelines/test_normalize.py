"""NormalizeMultiviewImage: BGR input, RGB mean/std."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.pipelines.normalize import NormalizeMultiviewImage

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def test_to_rgb_swaps_before_normalising() -> None:
    bgr = np.zeros((2, 3, 3), dtype=np.float32)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10.0, 20.0, 30.0  # B, G, R
    out = NormalizeMultiviewImage(mean=MEAN, std=STD, to_rgb=True)(dict(img=[bgr, bgr]))
    expected = (np.array([30.0, 20.0, 10.0]) - MEAN) / STD
    np.testing.assert_allclose(out["img"][1][1, 2], expected, rtol=1e-5)
    assert out["img"][0].dtype == np.float32 and out["img_norm_cfg"]["to_rgb"] is True
    kept = NormalizeMultiviewImage(mean=MEAN, std=STD, to_rgb=False)(dict(img=[bgr]))
    np.testing.assert_allclose(kept["img"][0][0, 0], (np.array([10.0, 20.0, 30.0]) - MEAN) / STD, rtol=1e-5)


def test_rejects_bad_statistics() -> None:
    with pytest.raises(ValueError, match="3 values"):
        NormalizeMultiviewImage(mean=[1, 2], std=STD)
    with pytest.raises(ValueError, match="non-zero"):
        NormalizeMultiviewImage(mean=MEAN, std=[1, 0, 1])
