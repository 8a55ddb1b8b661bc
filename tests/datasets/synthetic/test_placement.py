"""Object placement: all classes, sizes, attributes, no overlaps, ego path kept clear."""
from __future__ import annotations

import numpy as np
import pytest

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.synthetic.geometry import footprints, rectangles_overlap
from projects.mmdet3d_plugin.datasets.synthetic.placement import ANNOTATION_RANGE
from projects.mmdet3d_plugin.datasets.synthetic.scene_layout import EGO_LWH, ego_footprint_center
from projects.mmdet3d_plugin.datasets.synthetic.scene_writer import build_layout


@pytest.fixture(scope="module", params=[0, 1])
def layout(request):
    return build_layout(np.random.default_rng([7, request.param]), 20, 1_531_883_530_000_000)


def test_all_classes_with_plausible_sizes(layout) -> None:
    assert {o.cls.name for o in layout.objects} == set(NUSCENES_CLASSES)
    assert 15 <= len(layout.objects)
    for obj in layout.objects:
        size = dict(zip((n for n, _ in obj.cls.categories), obj.cls.size))[obj.category]
        assert np.all(np.abs(obj.lwh / np.asarray(size) - 1.0) <= 0.3)


def test_no_overlaps_and_clear_ego_path(layout) -> None:
    rects = np.stack([footprints(o.xy, o.lwh[:2], o.yaw) for o in layout.objects])  # (N, T, 4, 2)
    n = len(layout.objects)
    pairs = rectangles_overlap(rects[:, None], rects[None, :])  # (N, N, T)
    pairs[np.arange(n), np.arange(n)] = False
    assert not pairs.any()
    ego = footprints(ego_footprint_center(layout.ego_xy, layout.ego_yaw), np.asarray(EGO_LWH[:2]), layout.ego_yaw)
    assert not rectangles_overlap(rects[:, :, None], ego[None, None]).any()


def test_motion_matches_attributes(layout) -> None:
    kinds = set()
    for obj in layout.objects:
        step = np.linalg.norm(np.diff(obj.xy, axis=0), axis=1) / 0.5
        if obj.attribute in ("vehicle.moving", "pedestrian.moving"):
            assert step.min() > 0.5 and np.ptp(step) < 0.5  # steady speed
            heading = np.array([np.cos(obj.yaw[:-1]), np.sin(obj.yaw[:-1])]).T
            along = np.einsum("ij,ij->i", np.diff(obj.xy, axis=0), heading) / 0.5
            assert np.all(along > 0.4 * step)  # moves forwards
            kinds.add("moving")
        elif obj.attribute in ("vehicle.parked", "vehicle.stopped", "pedestrian.standing", None):
            assert np.allclose(step, 0.0)
            kinds.add("static")
        assert obj.frames == list(range(obj.frames[0], obj.frames[-1] + 1))
        dist = np.linalg.norm(obj.xy[obj.frames] - layout.ego_xy[obj.frames], axis=1)
        assert np.all(dist <= ANNOTATION_RANGE)
    assert kinds == {"moving", "static"}


def test_ego_track_is_smooth(layout) -> None:
    speed = np.linalg.norm(np.diff(layout.ego_xy, axis=0), axis=1) / 0.5
    assert np.all(speed <= 12.0 + 1e-6) and np.all(layout.ego_xy >= 80.0)
    yaw_rate = np.angle(np.exp(1j * np.diff(layout.ego_yaw))) / 0.5
    assert np.all(np.abs(yaw_rate) <= speed / 150.0 + 1e-3)
    assert np.all(np.diff(layout.timestamps) == 500_000)
