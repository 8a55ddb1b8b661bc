"""Projection of 3D boxes: centres agree with the annotations, edges are clipped at the near plane."""
from __future__ import annotations

import numpy as np

from projects.mmdet3d_plugin.visualization.projection import (
    BOX_EDGES, NEAR_PLANE_M, box_edges_2d, box_in_image, project_box_centers, project_points)


def test_projected_centres_match_the_annotations(val_dataset):
    """Every annotated centres2d is the projection of one GT box's centre (same pixel).

    All annotations of the info count (the dataset's 3D filter keeps only boxes with LiDAR
    points, the 2D annotations are not filtered that way).
    """
    checked = 0
    for index in range(len(val_dataset)):
        info = val_dataset.get_data_info(index)
        boxes = np.asarray(val_dataset.infos[index]["gt_boxes"], dtype=np.float64)
        for cam, (lidar2img, centers2d) in enumerate(zip(info["lidar2img"], info["centers2d"])):
            if not len(centers2d):
                continue
            uv, depth = project_box_centers(boxes, lidar2img)
            distance = np.linalg.norm(uv[None] - centers2d[:, None], axis=-1)
            distance[:, depth <= 0] = np.inf
            assert distance.min(axis=1).max() < 0.5, (index, cam)
            checked += len(centers2d)
    assert checked > 10


def test_boxes_seen_by_a_camera_have_edges_inside_its_image(val_dataset):
    info = val_dataset.get_data_info(0)
    height, width = 225, 400  # TINY_WORLD image size
    seen = 0
    for lidar2img in info["lidar2img"]:
        inside = box_in_image(info["gt_bboxes_3d"], lidar2img, (height, width))
        for segments in np.array(box_edges_2d(info["gt_bboxes_3d"], lidar2img), dtype=object)[inside]:
            points = segments.reshape(-1, 2)
            assert ((points[:, 0] >= 0) & (points[:, 0] <= width) & (points[:, 1] >= 0)
                    & (points[:, 1] <= height)).any()
            seen += 1
    assert seen > 0


def _front_camera() -> np.ndarray:
    """lidar2img of a camera at the origin looking along +x (f = 100, 200x100 image)."""
    intrinsics = np.array([[100.0, 0, 100, 0], [0, 100.0, 50, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    axes = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    return intrinsics @ axes


def test_edges_are_clipped_at_the_near_plane():
    lidar2img = _front_camera()
    ahead = np.array([[10.0, 0, 0, 4, 2, 1.5, 0, 0, 0]])
    straddling = np.array([[0.0, 0, 0, 4, 2, 1.5, 0, 0, 0]])  # the camera is inside the box
    behind = np.array([[-10.0, 0, 0, 4, 2, 1.5, 0, 0, 0]])
    full, cut, none = (box_edges_2d(b, lidar2img)[0] for b in (ahead, straddling, behind))
    assert full.shape == (len(BOX_EDGES), 2, 2) and none.shape[0] == 0
    assert 0 < cut.shape[0] < len(BOX_EDGES) and np.isfinite(cut).all()
    # A clipped end lies on the near plane: back-project its pixel at depth NEAR_PLANE_M.
    _, depth = project_points(np.array([[NEAR_PLANE_M, 1.0, 0.75]]), lidar2img)
    assert np.isclose(depth[0], NEAR_PLANE_M)
