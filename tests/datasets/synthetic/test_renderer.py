"""Box rendering: projection, painter's occlusion, heading-dependent shading, visibility."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.synthetic.background import (camera_background, ground_tiles,
                                                                  render_background)
from projects.mmdet3d_plugin.datasets.synthetic.cameras import scene_rig
from projects.mmdet3d_plugin.datasets.synthetic.renderer import BoxSet, render_camera

SIZE = (320, 180)


@pytest.fixture(scope="module")
def front():
    rig = scene_rig(np.random.default_rng(0), SIZE)
    calib = rig["CAM_FRONT"]
    return calib, camera_background(calib, ground_tiles())


def _boxes(centers, yaws, names=None) -> BoxSet:
    n = len(centers)
    lwh = np.tile([[4.5, 1.9, 1.6]], (n, 1))
    center = np.array([[x, y, 0.8] for x, y in centers], dtype=float)
    return BoxSet(center=center, lwh=lwh, yaw=np.asarray(yaws, dtype=float),
                  colour=np.tile([[40.0, 90.0, 200.0]], (n, 1)), accent=np.tile([[235.0, 245.0, 255.0]], (n, 1)),
                  names=names or ["car"] * n)


def _pixel(calib, point) -> tuple[int, int]:
    cam = calib.rotation.T @ (np.asarray(point) - calib.translation)
    uv = calib.intrinsic @ cam
    return int(uv[0] / uv[2]), int(uv[1] / uv[2])


def test_box_is_projected_where_it_stands(front) -> None:
    calib, bg = front
    ego = np.array([10.0, 20.0])
    image, visible, area = render_camera(bg, calib, ego, 0.0, _boxes([(ego[0] + 12.0, ego[1] + 1.0)], [0.3]))
    background = render_background(bg, ego, 0.0)
    u, v = _pixel(calib, [12.0, 1.0, 0.8])
    assert np.abs(image[v, u].astype(int) - background[v, u]).sum() > 60
    changed = np.abs(image.astype(int) - background).sum(-1) > 0
    assert changed.sum() == pytest.approx(visible[0], rel=0.05)
    assert visible[0] == pytest.approx(area[0], rel=0.1)


def test_nearer_box_hides_farther_box(front) -> None:
    calib, bg = front
    boxes = _boxes([(25.0, 0.0), (10.0, 0.0)], [np.pi / 2, np.pi / 2])
    boxes.colour[0] = [200.0, 30.0, 40.0]
    image, visible, area = render_camera(bg, calib, np.zeros(2), 0.0, boxes)
    assert visible[0] < 0.05 * area[0]
    assert visible[1] == pytest.approx(area[1], rel=0.1)
    u, v = _pixel(calib, [10.0, 0.0, 0.8])
    assert image[v, u, 2] > image[v, u, 0]  # the near, blue box is on top
    visible_alone, = render_camera(bg, calib, np.zeros(2), 0.0, _boxes([(25.0, 0.0)], [np.pi / 2]))[1]
    assert visible_alone == pytest.approx(area[0], rel=0.1)


def test_front_face_is_marked(front) -> None:
    calib, bg = front
    facing = render_camera(bg, calib, np.zeros(2), 0.0, _boxes([(12.0, 0.0)], [np.pi]))[0]
    away = render_camera(bg, calib, np.zeros(2), 0.0, _boxes([(12.0, 0.0)], [0.0]))[0]
    u, v = _pixel(calib, [9.75, 0.0, 1.2])
    assert facing[v, u].astype(int).sum() > away[v, u].astype(int).sum() + 150


def test_box_behind_camera_is_not_drawn(front) -> None:
    calib, bg = front
    image, visible, area = render_camera(bg, calib, np.zeros(2), 0.0, _boxes([(-15.0, 0.0)], [0.0]))
    assert visible[0] == 0 and area[0] == 0.0
    assert np.array_equal(image, render_background(bg, np.zeros(2), 0.0))


def test_box_across_near_plane_is_clipped(front) -> None:
    calib, bg = front
    boxes = _boxes([(1.5, 1.9)], [0.0])  # beside the camera, reaching behind it
    image, visible, area = render_camera(bg, calib, np.zeros(2), 0.0, boxes)
    assert 0.05 * SIZE[0] * SIZE[1] < area[0] <= SIZE[0] * SIZE[1] / 2
    assert visible[0] > 0.9 * area[0]
    changed = np.abs(image.astype(int) - render_background(bg, np.zeros(2), 0.0)).sum(-1) > 0
    assert changed[:, : SIZE[0] // 8].mean() > 0.4 and changed[:, -SIZE[0] // 4:].mean() == 0.0
