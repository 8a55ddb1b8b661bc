"""The lifted-BEV panel: its per-cell measures and the PNG."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from projects.mmdet3d_plugin.visualization.bev_features import (cosine_disagreement, feature_norm,
                                                                render_bev_features)

PC_RANGE = [-10.0, -10.0, -3.0, 10.0, 10.0, 1.0]


def test_feature_norm_is_the_channel_l2_norm():
    bev = np.zeros((2, 3, 4), np.float32)
    bev[:, 1, 2] = (3.0, 4.0)
    norm = feature_norm(bev)
    assert norm.shape == (3, 4)
    assert norm[1, 2] == pytest.approx(5.0)
    assert norm.sum() == pytest.approx(5.0)


def test_disagreement_is_zero_for_parallel_two_for_opposite_and_zero_where_unseen():
    teacher = np.ones((3, 2, 2), np.float32)
    student = teacher.copy()
    student[:, 0, 1] = -2.0
    student[:, 1, 1] = 0.0
    out = cosine_disagreement(teacher, 2.5 * student)
    assert out[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert out[0, 1] == pytest.approx(2.0)
    assert out[1, 1] == 0.0


@pytest.mark.parametrize("with_labels", [True, False])
def test_png_has_four_panels_worth_of_pixels(tmp_path, with_labels):
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(2, 8, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 4, size=(16, 16)) if with_labels else None
    path = render_bev_features(teacher, student, labels, tmp_path / "bev.png", PC_RANGE, title="t", dpi=50)
    with Image.open(path) as image:
        assert image.size == (800, 240)
        assert np.asarray(image.convert("L")).std() > 10


def test_mismatched_maps_and_labels_are_refused(tmp_path):
    maps = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="one shape"):
        render_bev_features(maps, maps[:, :4], None, tmp_path / "a.png", PC_RANGE)
    with pytest.raises(ValueError, match="region labels"):
        render_bev_features(maps, maps, np.zeros((4, 4), np.int64), tmp_path / "a.png", PC_RANGE)
