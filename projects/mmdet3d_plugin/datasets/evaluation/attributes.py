"""Default nuScenes attribute of a detection, from its class and its speed.

Camera detectors predict no attribute, so the submission fills one in from the class and the
predicted speed, with the rule mmdet3d's nuScenes dataset uses (its ``DefaultAttribute``
table): above :data:`MOVING_SPEED` m/s a box is moving, otherwise it is parked / standing /
without rider, except a bus, which is *stopped* (buses wait at stops; they are rarely
parked). Barriers and traffic cones carry no attribute (the devkit ignores theirs).
"""
from __future__ import annotations

import math

MOVING_SPEED = 0.2
"""Speed (m/s) above which a box counts as moving."""

# class name -> (attribute when moving, attribute when not moving)
ATTRIBUTES_BY_CLASS: dict[str, tuple[str, str]] = {
    "car": ("vehicle.moving", "vehicle.parked"),
    "truck": ("vehicle.moving", "vehicle.parked"),
    "bus": ("vehicle.moving", "vehicle.stopped"),
    "trailer": ("vehicle.moving", "vehicle.parked"),
    "construction_vehicle": ("vehicle.moving", "vehicle.parked"),
    "bicycle": ("cycle.with_rider", "cycle.without_rider"),
    "motorcycle": ("cycle.with_rider", "cycle.without_rider"),
    "pedestrian": ("pedestrian.moving", "pedestrian.standing"),
    "barrier": ("", ""),
    "traffic_cone": ("", ""),
}


def default_attribute(class_name: str, speed: float) -> str:
    """The nuScenes attribute of a detection of ``class_name`` moving at ``speed`` m/s.

    Args:
        class_name: one of the ten nuScenes detection classes.
        speed: norm of the predicted planar velocity, m/s. A non-finite speed (NaN) counts
            as not moving.

    Returns:
        The attribute name (``''`` for barriers and traffic cones).

    Raises:
        KeyError: ``class_name`` is not a nuScenes detection class.
    """
    if class_name not in ATTRIBUTES_BY_CLASS:
        raise KeyError(
            f"no default attribute for class {class_name!r}; "
            f"expected one of {sorted(ATTRIBUTES_BY_CLASS)}"
        )
    moving, still = ATTRIBUTES_BY_CLASS[class_name]
    is_moving = math.isfinite(speed) and speed > MOVING_SPEED
    return moving if is_moving else still
