"""MultiScaleFlipAug3D: single scale, no flip, plain sample dict."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.pipelines.multi_scale_flip_aug import MultiScaleFlipAug3D

STEPS = [dict(type="PadMultiViewImage", size_divisor=8)]


def test_runs_the_wrapped_steps_once() -> None:
    out = MultiScaleFlipAug3D(STEPS, img_scale=(1333, 800), pts_scale_ratio=1, flip=False)(
        dict(img=[np.zeros((5, 9, 3))])
    )
    assert out["pad_shape"] == (8, 16) and out["img"][0].shape == (8, 16, 3)
    assert MultiScaleFlipAug3D(STEPS, img_scale=[(1333, 800)], pts_scale_ratio=[1.0]).img_scale == (1333, 800)


def test_unsupported_options_raise() -> None:
    with pytest.raises(ValueError, match="flip=False"):
        MultiScaleFlipAug3D(STEPS, img_scale=(1333, 800), flip=True)
    with pytest.raises(ValueError, match="single img_scale"):
        MultiScaleFlipAug3D(STEPS, img_scale=[(1333, 800), (1000, 600)])
    with pytest.raises(ValueError, match="pts_scale_ratio"):
        MultiScaleFlipAug3D(STEPS, img_scale=(1333, 800), pts_scale_ratio=[0.9])
    with pytest.raises(TypeError):
        MultiScaleFlipAug3D(STEPS, img_scale=(1333, 800), flip_direction="horizontal")
