"""2D box mapping, clipping and the occlusion filter."""
from __future__ import annotations

import numpy as np

from projects.mmdet3d_plugin.datasets.pipelines.boxes_2d import (
    filter_occluded_boxes,
    transform_boxes_2d,
    transform_points_2d,
)


def test_boxes_are_mapped_clipped_and_small_ones_dropped() -> None:
    ida = np.array([[-0.5, 0.0, 50.0], [0.0, 0.5, -10.0], [0.0, 0.0, 1.0]])  # scale, crop, flip
    boxes = np.array([[10, 40, 30, 60], [90, 10, 110, 22], [0, 0, 4, 40]], dtype=np.float32)
    out, keep = transform_boxes_2d(boxes, ida, (20, 50), min_size=2.0)
    np.testing.assert_allclose(out[0], [35, 10, 45, 20])  # y clipped from 20 to 20 (fH)
    np.testing.assert_allclose(out[1], [0, 0, 5, 1])  # x clipped at 0, 1 px high
    np.testing.assert_allclose(out[2], [48, 0, 50, 10])
    assert keep.tolist() == [True, False, True]
    np.testing.assert_allclose(transform_points_2d(np.array([[10.0, 40.0]]), ida, (20, 50)), [[45.0, 10.0]])


def _upstream_centres(centres: np.ndarray, resize: float, crop: tuple[int, int], flip: bool,
                      final_dim: tuple[int, int]) -> np.ndarray:
    """Upstream's centers2d rule: scale, shift by the crop, clip to [0, fW] x [0, fH], then flip."""
    f_h, f_w = final_dim
    out = np.asarray(centres, dtype=np.float64) * resize - np.asarray(crop, dtype=np.float64)
    out[:, 0] = np.clip(out[:, 0], 0, f_w)
    out[:, 1] = np.clip(out[:, 1], 0, f_h)
    if flip:
        out[:, 0] = f_w - out[:, 0]
    return out


def test_centres_are_clipped_to_the_image_like_upstream() -> None:
    ida = np.array([[-0.5, 0.0, 50.0], [0.0, 0.5, -10.0], [0.0, 0.0, 1.0]])  # resize 0.5, crop (0, 10), flip
    centres = np.array([[10.0, 40.0], [120.0, 70.0], [-20.0, 5.0], [101.0, 61.0], [50.0, 30.0]])
    out = transform_points_2d(centres, ida, (20, 50))
    np.testing.assert_allclose(out[:3], [[45.0, 10.0], [0.0, 20.0], [50.0, 0.0]])  # by hand
    np.testing.assert_allclose(out, _upstream_centres(centres, 0.5, (0, 10), True, (20, 50)), atol=1e-5)


def test_rotated_box_is_the_hull_of_its_corners() -> None:
    rad = np.deg2rad(90.0)
    ida = np.array([[np.cos(rad), np.sin(rad), 0.0], [-np.sin(rad), np.cos(rad), 100.0], [0, 0, 1]])
    out, keep = transform_boxes_2d(np.array([[10, 20, 30, 60]]), ida, (200, 200), 2.0)
    np.testing.assert_allclose(out[0], [20, 70, 60, 90], atol=1e-4)
    assert keep.all()


def test_occlusion_filter_paints_far_to_near() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 2, 8, 8], [5, 5, 20, 20], [15.2, 15.2, 15.8, 15.8]])
    depths = np.array([3.0, 10.0, 8.0, 1.0])
    visible = filter_occluded_boxes(boxes, depths, (30, 30))
    assert visible.tolist() == [True, False, True, False]  # 1 is covered, 3 covers no whole pixel
