"""2D box mapping, clipping and the occlusion filter."""
from __future__ import annotations

import numpy as np

from projects.mmdet3d_plugin.datasets.pipelines.boxes_2d import (
    transform_boxes_2d,
    transform_points_2d,
    visible_far_to_near,
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


def _upstream_filter(boxes: np.ndarray, depths: np.ndarray, final_dim: tuple[int, int]) -> np.ndarray:
    """Upstream's _filter_invisible on the boxes alone: the surviving boxes, far to near."""
    index_map = np.zeros(final_dim)
    whole = np.zeros_like(boxes)
    whole[:, :2] = np.ceil(boxes[:, :2])
    whole[:, 2:] = np.floor(boxes[:, 2:])
    order = np.argsort(-depths, axis=0, kind="stable")
    whole, boxes = whole[order].astype(np.int64), boxes[order]
    for rank in range(len(boxes)):
        u0, v0, u1, v1 = whole[rank]
        index_map[v0:v1, u0:u1] = rank
    return boxes[np.unique(index_map).astype(np.int64)]


def test_occlusion_filter_paints_far_to_near() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 2, 8, 8], [5, 5, 20, 20], [15.2, 15.2, 15.8, 15.8]])
    depths = np.array([3.0, 10.0, 8.0, 1.0])
    # far to near: 1, 2, 0, 3. Box 1 lies under box 0 but is the farthest: the map's unpainted
    # pixels read rank 0, so it survives; box 3 covers no whole pixel.
    assert visible_far_to_near(boxes, depths, (30, 30)).tolist() == [1, 2, 0]


def test_occlusion_filter_keeps_the_farthest_box_and_orders_far_to_near() -> None:
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    assert visible_far_to_near(same, np.array([20.0, 5.0]), (30, 30)).tolist() == [0, 1]
    assert visible_far_to_near(same, np.array([5.0, 20.0]), (30, 30)).tolist() == [1, 0]
    # the nearer box covers the whole image: no pixel reads rank 0, the farthest box goes
    assert visible_far_to_near(same, np.array([20.0, 5.0]), (10, 10)).tolist() == [1]
    apart = np.array([[0, 0, 4, 4], [10, 10, 14, 14], [20, 0, 24, 4]], dtype=np.float64)
    assert visible_far_to_near(apart, np.array([3.0, 9.0, 3.0]), (30, 30)).tolist() == [1, 0, 2]
    assert visible_far_to_near(np.zeros((0, 4)), np.zeros(0), (30, 30)).tolist() == []


def test_occlusion_filter_matches_upstream_on_random_boxes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(1, 9))
        corner = rng.uniform(0, [38, 28], size=(k, 2))
        boxes = np.c_[corner, np.minimum(corner + rng.uniform(0.5, 20, size=(k, 2)), [40, 30])]
        depths = rng.choice([4.0, 7.5, 12.0, 30.0], size=k).astype(np.float32)  # with ties
        kept = visible_far_to_near(boxes, depths, (30, 40))
        np.testing.assert_array_equal(boxes[kept], _upstream_filter(boxes, depths, (30, 40)))
