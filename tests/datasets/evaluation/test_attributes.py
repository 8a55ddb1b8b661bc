"""Default attribute by class and speed."""
from __future__ import annotations

import math

import pytest
from nuscenes.eval.detection.constants import ATTRIBUTE_NAMES, DETECTION_NAMES

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.evaluation.attributes import (
    ATTRIBUTES_BY_CLASS,
    MOVING_SPEED,
    default_attribute,
)

EXPECTED = {
    # class: (moving, not moving)
    "car": ("vehicle.moving", "vehicle.parked"),
    "truck": ("vehicle.moving", "vehicle.parked"),
    "trailer": ("vehicle.moving", "vehicle.parked"),
    "construction_vehicle": ("vehicle.moving", "vehicle.parked"),
    "bus": ("vehicle.moving", "vehicle.stopped"),
    "bicycle": ("cycle.with_rider", "cycle.without_rider"),
    "motorcycle": ("cycle.with_rider", "cycle.without_rider"),
    "pedestrian": ("pedestrian.moving", "pedestrian.standing"),
    "barrier": ("", ""),
    "traffic_cone": ("", ""),
}


def test_table_covers_exactly_the_devkit_classes_with_devkit_attributes() -> None:
    assert set(ATTRIBUTES_BY_CLASS) == set(DETECTION_NAMES) == set(NUSCENES_CLASSES)
    for moving, still in ATTRIBUTES_BY_CLASS.values():
        assert moving in ATTRIBUTE_NAMES or moving == ""
        assert still in ATTRIBUTE_NAMES or still == ""


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attribute_by_class_and_speed(name: str) -> None:
    moving, still = EXPECTED[name]
    assert default_attribute(name, 5.0) == moving
    assert default_attribute(name, 0.0) == still


def test_threshold_is_strictly_above_point_two() -> None:
    assert MOVING_SPEED == 0.2
    assert default_attribute("car", 0.2) == "vehicle.parked"
    assert default_attribute("car", 0.2001) == "vehicle.moving"
    assert default_attribute("pedestrian", 0.19) == "pedestrian.standing"


def test_unknown_speed_counts_as_not_moving() -> None:
    assert default_attribute("motorcycle", math.nan) == "cycle.without_rider"


def test_unknown_class_names_the_class() -> None:
    with pytest.raises(KeyError, match="animal"):
        default_attribute("animal", 1.0)
