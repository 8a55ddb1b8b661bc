"""What the generated world is made of: object classes, categories, attributes, visibility.

Every generated object belongs to one of the ten nuScenes detection classes and carries a
real nuScenes category name, so that the devkit's ``category_to_detection_name`` maps it back
to its class. Sizes are close to the nuScenes per-class means (``l, w, h`` in metres).
"""
from __future__ import annotations

from dataclasses import dataclass

from ...core.bbox.box_layout import NUSCENES_CLASSES

ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("vehicle.moving", "Vehicle is moving."),
    ("vehicle.stopped", "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move."),
    ("vehicle.parked", "Vehicle is stationary (usually for longer duration) with no immediate intent to move."),
    ("cycle.with_rider", "There is a rider on the bicycle or motorcycle."),
    ("cycle.without_rider", "There is NO rider on the bicycle or motorcycle."),
    ("pedestrian.sitting_lying_down", "The human is sitting or lying down."),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
)

VISIBILITY_LEVELS: tuple[tuple[str, str, str], ...] = (
    ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
    ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
    ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
    ("4", "v80-100", "visibility of whole object is between 80 and 100%"),
)

SENSOR_MODALITIES: tuple[tuple[str, str], ...] = (
    ("CAM_FRONT", "camera"),
    ("CAM_FRONT_RIGHT", "camera"),
    ("CAM_FRONT_LEFT", "camera"),
    ("CAM_BACK", "camera"),
    ("CAM_BACK_LEFT", "camera"),
    ("CAM_BACK_RIGHT", "camera"),
    ("LIDAR_TOP", "lidar"),
)


@dataclass(frozen=True)
class ObjectClass:
    """One detection class of the generated world.

    Attributes:
        name: detection class name (one of ``NUSCENES_CLASSES``).
        categories: nuScenes category names and their relative frequencies.
        size: mean ``(l, w, h)`` per category, same order as ``categories``.
        size_jitter: relative standard deviation of each size component.
        colour: base RGB colour of the object's faces.
        accent: RGB colour of the mark on the front face (shows the heading).
        reflectivity: LiDAR intensity of the object's surface, in [0, 255].
        kind: ``"vehicle"``, ``"cycle"``, ``"pedestrian"`` or ``"static"``; selects the
            attributes and where the object may stand.
    """

    name: str
    categories: tuple[tuple[str, float], ...]
    size: tuple[tuple[float, float, float], ...]
    size_jitter: float
    colour: tuple[int, int, int]
    accent: tuple[int, int, int]
    reflectivity: float
    kind: str


OBJECT_CLASSES: tuple[ObjectClass, ...] = (
    ObjectClass("car", (("vehicle.car", 1.0),), ((4.6, 1.95, 1.7),), 0.08,
                (40, 90, 200), (235, 245, 255), 60.0, "vehicle"),
    ObjectClass("truck", (("vehicle.truck", 1.0),), ((6.9, 2.5, 2.85),), 0.12,
                (210, 120, 30), (250, 250, 200), 70.0, "vehicle"),
    ObjectClass("construction_vehicle", (("vehicle.construction", 1.0),), ((6.4, 2.85, 3.2),), 0.12,
                (230, 200, 20), (40, 40, 40), 80.0, "vehicle"),
    ObjectClass("bus", (("vehicle.bus.rigid", 0.8), ("vehicle.bus.bendy", 0.2)),
                ((11.0, 2.95, 3.45), (17.0, 2.95, 3.25)), 0.06,
                (200, 30, 40), (255, 230, 120), 70.0, "vehicle"),
    ObjectClass("trailer", (("vehicle.trailer", 1.0),), ((12.0, 2.9, 3.8),), 0.1,
                (175, 160, 195), (60, 60, 70), 65.0, "vehicle"),
    ObjectClass("barrier", (("movable_object.barrier", 1.0),), ((0.5, 2.5, 1.0),), 0.06,
                (240, 215, 110), (220, 30, 30), 150.0, "static"),
    ObjectClass("motorcycle", (("vehicle.motorcycle", 1.0),), ((2.1, 0.8, 1.45),), 0.06,
                (120, 30, 160), (255, 255, 255), 60.0, "cycle"),
    ObjectClass("bicycle", (("vehicle.bicycle", 1.0),), ((1.7, 0.6, 1.3),), 0.06,
                (30, 170, 80), (255, 255, 255), 50.0, "cycle"),
    ObjectClass("pedestrian", (("human.pedestrian.adult", 0.85), ("human.pedestrian.child", 0.15)),
                ((0.7, 0.67, 1.77), (0.5, 0.45, 1.25)), 0.06,
                (235, 170, 140), (30, 30, 30), 40.0, "pedestrian"),
    ObjectClass("traffic_cone", (("movable_object.trafficcone", 1.0),), ((0.41, 0.41, 1.05),), 0.08,
                (255, 110, 0), (255, 255, 255), 200.0, "static"),
)

CLASS_BY_NAME: dict[str, ObjectClass] = {c.name: c for c in OBJECT_CLASSES}

CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "vehicle.car": "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans.",
    "vehicle.truck": "Vehicles primarily designed to haul cargo including pick-ups, lorries, trucks and semi-tractors.",
    "vehicle.construction": "Vehicles primarily designed for construction. Typically very slow moving or stationary.",
    "vehicle.bus.rigid": "Rigid bus.",
    "vehicle.bus.bendy": "Bendy bus, i.e. articulated bus.",
    "vehicle.trailer": "Any vehicle trailer, both for trucks, cars and bikes.",
    "movable_object.barrier": "Temporary road barrier placed in the scene in order to redirect traffic.",
    "vehicle.motorcycle": "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly.",
    "vehicle.bicycle": "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds.",
    "human.pedestrian.adult": "Adult subcategory.",
    "human.pedestrian.child": "Child subcategory.",
    "movable_object.trafficcone": "All types of traffic cone.",
}


def category_names() -> list[str]:
    """All nuScenes category names used by the generated world, in a fixed order."""
    names = [name for cls in OBJECT_CLASSES for name, _ in cls.categories]
    if set(names) != set(CATEGORY_DESCRIPTIONS):
        raise ValueError(f"catalog categories {sorted(names)} lack descriptions")
    if tuple(c.name for c in OBJECT_CLASSES) != NUSCENES_CLASSES:
        raise ValueError("OBJECT_CLASSES must follow NUSCENES_CLASSES order")
    return names
