"""Where the objects of a scene stand and how they move.

The road has parallel lanes at fixed lateral offsets (metres, left of the centreline
positive). Every lane has one signed speed for the whole scene, so objects in one lane keep
their spacing; every candidate is still checked against all accepted objects (at every
keyframe) and against the whole swept ego path, and rejected when any footprint overlaps.

=========================  ===================================================
offset                     use
=========================  ===================================================
0                          the ego lane, always empty
+-3.7, +-7.2               vehicle lanes (moving, or stopped: speed 0)
+-9.0 ... +-9.6            road edge: barriers, traffic cones
+-10.2                     cycle lanes (riders)
+-12.5                     kerb parking (parked vehicles)
+-14 ... +-17              pavement: pedestrians, parked cycles, cones
+-20 ... +-32              lots: parked vehicles, barriers at any heading
=========================  ===================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import CLASS_BY_NAME, OBJECT_CLASSES, ObjectClass
from .geometry import footprints, rectangles_overlap
from .scene_layout import EGO_LWH, SceneLayout, SceneObject, ego_footprint_center

ANNOTATION_RANGE = 60.0
NEAR_EGO = 45.0
MAX_OBJECTS = 160
_EGO_MARGIN = 1.0
_OBJECT_MARGIN = 0.3
_TRIES_PER_CLASS = 60
_EXTRA_CLASS_WEIGHTS = {
    "car": 0.3, "truck": 0.08, "construction_vehicle": 0.04, "bus": 0.04, "trailer": 0.04,
    "barrier": 0.12, "motorcycle": 0.05, "bicycle": 0.06, "pedestrian": 0.17, "traffic_cone": 0.1,
}
_ZONES = {
    "car": (("lane", 0.45), ("kerb", 0.35), ("lot", 0.2)),
    "truck": (("lane", 0.4), ("kerb", 0.4), ("lot", 0.2)),
    "construction_vehicle": (("lot", 0.6), ("kerb", 0.3), ("lane", 0.1)),
    "bus": (("lane", 0.6), ("kerb", 0.4)),
    "trailer": (("kerb", 0.5), ("lot", 0.4), ("lane", 0.1)),
    "barrier": (("edge", 0.6), ("lot", 0.4)),
    "motorcycle": (("cycle_lane", 0.4), ("lane", 0.2), ("pavement", 0.4)),
    "bicycle": (("cycle_lane", 0.5), ("pavement", 0.5)),
    "pedestrian": (("walkway", 0.6), ("pavement", 0.4)),
    "traffic_cone": (("edge", 0.7), ("pavement", 0.3)),
}


@dataclass(frozen=True)
class Slot:
    """A place on the road: lateral offset, signed speed along the road, heading offset."""

    lateral: float
    speed: float
    yaw_offset: float
    random_yaw: bool


def lane_speeds(rng: np.random.Generator) -> dict[str, dict[float, float]]:
    """Signed speeds (m/s along the road) of the scene's lanes, by lane kind and offset."""
    vehicle = {}
    for side in (1.0, -1.0):
        for offset in (3.7, 7.2):
            stopped = rng.random() < 0.25
            vehicle[side * offset] = 0.0 if stopped else side * rng.uniform(3.0, 12.0)
    cycle = {side * 10.2: side * rng.uniform(2.5, 7.0) for side in (1.0, -1.0)}
    walkway = {}
    for side in (1.0, -1.0):
        walkway[side * 15.2] = rng.uniform(1.0, 1.6)
        walkway[side * 16.4] = -rng.uniform(1.0, 1.6)
    return {"lane": vehicle, "cycle_lane": cycle, "walkway": walkway}


def choose_slot(rng: np.random.Generator, zone: str, speeds: dict[str, dict[float, float]]) -> Slot:
    """A random slot of a zone (see the module table)."""
    side = float(rng.choice([-1.0, 1.0]))
    if zone in speeds:
        lateral = float(rng.choice(list(speeds[zone])))
        speed = speeds[zone][lateral]
        backwards = speed < 0.0 or (speed == 0.0 and lateral < 0.0)
        return Slot(lateral, speed, np.pi if backwards else 0.0, False)
    if zone == "edge":
        return Slot(side * rng.uniform(9.0, 9.6), 0.0, np.pi / 2.0, False)
    if zone == "kerb":
        flip = np.pi if (side < 0.0) != (rng.random() < 0.15) else 0.0
        return Slot(side * 12.5, 0.0, flip + rng.normal(0.0, 0.03), False)
    if zone == "pavement":
        return Slot(side * rng.uniform(14.0, 17.0), 0.0, 0.0, True)
    if zone == "lot":
        return Slot(side * rng.uniform(20.0, 32.0), 0.0, 0.0, True)
    raise ValueError(f"unknown placement zone {zone!r}")


def attribute_for(cls: ObjectClass, zone: str, speed: float) -> str | None:
    """The nuScenes attribute of an object of class ``cls`` in ``zone`` at ``speed``."""
    moving = abs(speed) > 0.0
    if cls.kind == "vehicle":
        if moving:
            return "vehicle.moving"
        return "vehicle.stopped" if zone == "lane" else "vehicle.parked"
    if cls.kind == "cycle":
        return "cycle.with_rider" if zone in ("lane", "cycle_lane") else "cycle.without_rider"
    if cls.kind == "pedestrian":
        return "pedestrian.moving" if moving else "pedestrian.standing"
    return None


def make_candidate(
    rng: np.random.Generator, cls: ObjectClass, layout: SceneLayout, ego_s: np.ndarray,
    t: np.ndarray, speeds: dict[str, dict[float, float]],
) -> SceneObject:
    """One candidate object of class ``cls`` in a random slot near the ego path.

    Args:
        rng: random generator.
        cls: the object's class.
        layout: the scene (road and ego).
        ego_s: ``(T,)`` ego arc lengths.
        t: ``(T,)`` seconds since the scene start.
        speeds: the lane speeds of :func:`lane_speeds`.

    Returns:
        The object with per-keyframe positions; ``frames`` is still empty.
    """
    zones, weights = zip(*_ZONES[cls.name])
    zone = str(rng.choice(zones, p=np.asarray(weights) / sum(weights)))
    slot = choose_slot(rng, zone, speeds)
    probs = np.asarray([p for _, p in cls.categories])
    k = int(rng.choice(len(cls.categories), p=probs / probs.sum()))
    lwh = np.asarray(cls.size[k]) * np.clip(1.0 + cls.size_jitter * rng.standard_normal(3), 0.7, 1.3)
    s_mid = rng.uniform(ego_s.min() - NEAR_EGO, ego_s.max() + NEAR_EGO)
    s = s_mid + slot.speed * (t - t[-1] / 2.0)
    xy, heading = layout.road.pose(s, slot.lateral)
    yaw_offset = rng.uniform(-np.pi, np.pi) if slot.random_yaw else slot.yaw_offset
    yaw = np.angle(np.exp(1j * (heading + yaw_offset)))
    colour = np.clip(np.asarray(cls.colour) * rng.uniform(0.8, 1.15), 0, 255)
    return SceneObject(cls=cls, category=cls.categories[k][0], lwh=lwh, xy=xy, yaw=yaw,
                       attribute=attribute_for(cls, zone, slot.speed), colour=colour)


def annotated_frames(obj: SceneObject, ego_xy: np.ndarray) -> list[int]:
    """The longest run of consecutive keyframes where the object is within 60 m of the ego."""
    near = np.linalg.norm(obj.xy - ego_xy, axis=-1) <= ANNOTATION_RANGE
    best: list[int] = []
    run: list[int] = []
    for i, flag in enumerate(near):
        run = run + [i] if flag else []
        if len(run) > len(best):
            best = run
    return best


def _fits(candidate: np.ndarray, accepted: list[np.ndarray], ego: np.ndarray) -> bool:
    """Whether candidate footprints ``(T, 4, 2)`` miss the accepted ones and the ego path."""
    if rectangles_overlap(candidate[:, None], ego[None, :]).any():
        return False
    if accepted:
        return not rectangles_overlap(candidate[None], np.stack(accepted)).any()
    return True


def place_objects(
    rng: np.random.Generator, layout: SceneLayout, ego_s: np.ndarray, t: np.ndarray,
    n_objects: int,
) -> list[SceneObject]:
    """Non-overlapping objects of all ten classes along the ego path.

    Args:
        rng: random generator.
        layout: the scene (road and ego poses are used).
        ego_s: ``(T,)`` ego arc lengths.
        t: ``(T,)`` seconds since the scene start.
        n_objects: wanted number of objects (at least 10: one per class comes first).

    Returns:
        Up to ``n_objects`` objects, each with its annotated keyframes set.
    """
    speeds = lane_speeds(rng)
    ego_lw = np.asarray(EGO_LWH[:2]) + 2.0 * _EGO_MARGIN
    ego_rects = footprints(ego_footprint_center(layout.ego_xy, layout.ego_yaw), ego_lw, layout.ego_yaw)
    names = list(_EXTRA_CLASS_WEIGHTS)
    weights = np.asarray([_EXTRA_CLASS_WEIGHTS[n] for n in names])
    extras = [str(n) for n in rng.choice(names, size=40 * n_objects, p=weights / weights.sum())]
    objects: list[SceneObject] = []
    rects: list[np.ndarray] = []
    for cls in OBJECT_CLASSES:
        for _ in range(_TRIES_PER_CLASS):
            if _try_place(rng, cls, layout, ego_s, t, speeds, objects, rects, ego_rects):
                break
    for name in extras:
        if len(objects) >= n_objects:
            break
        _try_place(rng, CLASS_BY_NAME[name], layout, ego_s, t, speeds, objects, rects, ego_rects)
    return objects


def _try_place(
    rng: np.random.Generator, cls: ObjectClass, layout: SceneLayout, ego_s: np.ndarray,
    t: np.ndarray, speeds: dict[str, dict[float, float]], objects: list[SceneObject],
    rects: list[np.ndarray], ego_rects: np.ndarray,
) -> bool:
    """Make one candidate and append it (and its footprints) when it fits; True if it did."""
    obj = make_candidate(rng, cls, layout, ego_s, t, speeds)
    obj.frames = annotated_frames(obj, layout.ego_xy)
    rect = footprints(obj.xy, obj.lwh[:2] + _OBJECT_MARGIN, obj.yaw)
    if not obj.frames or not _fits(rect, rects, ego_rects):
        return False
    objects.append(obj)
    rects.append(rect)
    return True
