"""2D boxes of 3D boxes: corners, convex hull clipped to the image, projection filters."""
from __future__ import annotations

import numpy as np

from projects.mmdet3d_plugin.datasets.camera_boxes import box_corners, clipped_box, project_boxes_to_camera

INTRINSIC = np.array([[100.0, 0.0, 100.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]])


def test_box_corners_extent_and_rotation() -> None:
    yaw = np.pi / 2
    rotation = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    corners = box_corners(np.array([[1.0, 2.0, 3.0]]), np.array([[4.0, 2.0, 1.0]]), rotation[None])
    assert corners.shape == (1, 8, 3)
    np.testing.assert_allclose(corners[0].min(axis=0), [0.0, 0.0, 2.5], atol=1e-12)
    np.testing.assert_allclose(corners[0].max(axis=0), [2.0, 4.0, 3.5], atol=1e-12)
    # first corner is front-left-top in the box frame: +l/2 along the heading (+y here)
    np.testing.assert_allclose(corners[0, 0], [0.0, 4.0, 3.5], atol=1e-12)


def test_clipped_box_uses_the_hull_not_its_bounding_box() -> None:
    inside = np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 40.0], [10.0, 40.0]])
    np.testing.assert_allclose(clipped_box(inside, 200, 100), [10, 10, 50, 40])
    overflowing = inside + [180.0, 0.0]
    np.testing.assert_allclose(clipped_box(overflowing, 200, 100), [190, 10, 200, 40])
    # a thin diagonal triangle whose bounding box overlaps the image but the triangle does not
    triangle = np.array([[150.0, -100.0], [400.0, -100.0], [400.0, 150.0]])
    assert clipped_box(triangle, 200, 100) is None
    assert clipped_box(np.zeros((0, 2)), 200, 100) is None


def test_project_boxes_filters_behind_outside_and_thin() -> None:
    def cube(center: tuple[float, float, float], size: float) -> np.ndarray:
        signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
        return np.array(center) + signs * size / 2

    centers = np.array([[0.0, 0.0, 10.0], [0.0, 0.0, -10.0], [500.0, 0.0, 10.0], [0.0, 0.0, 10.0]])
    corners = np.stack([cube(tuple(c), s) for c, s in zip(centers, (2.0, 2.0, 2.0, 0.01))])
    labels = np.array([3, 1, 2, 0], dtype=np.int64)
    result = project_boxes_to_camera(corners, centers, INTRINSIC, labels, (200, 100))
    assert result.labels2d.tolist() == [3]
    np.testing.assert_allclose(result.centers2d, [[100.0, 50.0]])
    np.testing.assert_allclose(result.depths, [10.0])
    # nearest face at depth 9 spans +-1 m -> +-100/9 px around the principal point
    half = 100 / 9
    np.testing.assert_allclose(result.bboxes2d[0], [100 - half, 50 - half, 100 + half, 50 + half], rtol=1e-5)
    assert result.bboxes2d.dtype == np.float32 and result.labels2d.dtype == np.int64
