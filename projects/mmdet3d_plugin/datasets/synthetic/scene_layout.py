"""The layout of one generated scene: a curved road, the ego trajectory on it, the objects.

A scene is a gently curving road (curvature a sum of two slow sinusoids, radius >= 150 m)
with lanes parallel to its centreline. The ego drives along the centreline with a smooth
speed profile in [0, 12] m/s; its pose has z = 0, roll = pitch = 0 and a yaw equal to the
road heading. Objects (see :mod:`.placement`) stand or move along lanes at fixed lateral
offsets, so their headings follow the road too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .catalog import ObjectClass

KEYFRAME_INTERVAL_US = 500_000
MAX_EGO_SPEED = 12.0
EGO_LWH = (4.8, 1.95, 1.7)
EGO_CENTER_AHEAD = 1.4  # the ego frame origin is the rear axle; the body centre is ahead
_ROAD_STEP = 0.5
_ROAD_MARGIN = 420.0


@dataclass
class Road:
    """A road centreline sampled every 0.5 m of arc length.

    Attributes:
        s: ``(M,)`` arc length, metres.
        xy: ``(M, 2)`` global centreline positions.
        heading: ``(M,)`` unwrapped tangent angle.
    """

    s: np.ndarray
    xy: np.ndarray
    heading: np.ndarray

    def pose(self, s: np.ndarray, lateral: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global position and heading of points at arc length ``s`` and lateral offset.

        Args:
            s: ``(...)`` arc lengths.
            lateral: offset to the left of the centreline (scalar or ``(...)``).

        Returns:
            ``xy`` ``(..., 2)`` and ``heading`` ``(...)``.
        """
        heading = np.interp(s, self.s, self.heading)
        x = np.interp(s, self.s, self.xy[:, 0]) - np.sin(heading) * lateral
        y = np.interp(s, self.s, self.xy[:, 1]) + np.cos(heading) * lateral
        return np.stack([x, y], axis=-1), heading


@dataclass
class SceneObject:
    """One object of a scene, over all keyframes of the scene.

    Attributes:
        cls: its class.
        category: its nuScenes category name.
        lwh: ``(3,)`` length, width, height.
        xy: ``(T, 2)`` global centre positions per keyframe (z is ``h / 2``).
        yaw: ``(T,)`` global headings per keyframe.
        attribute: nuScenes attribute name, or None (barriers, cones).
        colour: ``(3,)`` RGB face colour.
        frames: keyframe indices where the object is annotated (a contiguous run).
    """

    cls: ObjectClass
    category: str
    lwh: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray
    attribute: str | None
    colour: np.ndarray
    frames: list[int] = field(default_factory=list)


@dataclass
class SceneLayout:
    """Everything that moves in one scene.

    Attributes:
        timestamps: ``(T,)`` keyframe times, int64 microseconds.
        ego_xy: ``(T, 2)`` global ego positions (z = 0).
        ego_yaw: ``(T,)`` global ego headings.
        ego_speed: ``(T,)`` ego speed, m/s.
        road: the road the scene is laid on.
        objects: the scene's objects.
    """

    timestamps: np.ndarray
    ego_xy: np.ndarray
    ego_yaw: np.ndarray
    ego_speed: np.ndarray
    road: Road
    objects: list[SceneObject] = field(default_factory=list)


def make_road(rng: np.random.Generator, length: float) -> Road:
    """A smooth road of arc length ``[-420, length + 420]`` starting at the origin.

    Args:
        rng: random generator.
        length: arc length the ego will cover, metres.

    Returns:
        The road; heading at s = 0 is random, position at s = 0 is ``(0, 0)``.
    """
    s = np.arange(-_ROAD_MARGIN, length + _ROAD_MARGIN + _ROAD_STEP, _ROAD_STEP)
    amp = rng.uniform(0.0, 1.0 / 300.0, size=2) * rng.choice([-1.0, 1.0], size=2)
    wavelength = rng.uniform(150.0, 420.0, size=2)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
    curvature = sum(a * np.sin(2.0 * np.pi * s / w + p) for a, w, p in zip(amp, wavelength, phase))
    heading = np.concatenate([[0.0], np.cumsum(0.5 * (curvature[1:] + curvature[:-1]) * _ROAD_STEP)])
    zero = int(np.argmin(np.abs(s)))
    heading = heading - heading[zero] + rng.uniform(-np.pi, np.pi)
    step = np.stack([np.cos(heading), np.sin(heading)], axis=-1) * _ROAD_STEP
    xy = np.concatenate([[[0.0, 0.0]], np.cumsum(0.5 * (step[1:] + step[:-1]), axis=0)])
    return Road(s=s, xy=xy - xy[zero], heading=heading)


def ego_speed_profile(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A smooth ego speed over time: cruising, slow traffic, or braking to a stop.

    Args:
        rng: random generator.
        t: ``(K,)`` seconds from the scene start.

    Returns:
        ``(K,)`` speeds in ``[0, 12]`` m/s.
    """
    kind = rng.choice(["cruise", "slow", "stop"], p=[0.5, 0.3, 0.2])
    period = rng.uniform(8.0, 25.0)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    if kind == "cruise":
        speed = rng.uniform(6.0, 10.5) + rng.uniform(0.0, 1.5) * np.sin(2.0 * np.pi * t / period + phase)
    elif kind == "slow":
        speed = rng.uniform(1.0, 4.0) * (1.0 + np.sin(2.0 * np.pi * t / period + phase))
    else:
        t_stop = max(float(t[-1]) * rng.uniform(0.3, 0.8), 1e-3)
        speed = rng.uniform(4.0, 10.0) * 0.5 * (1.0 + np.cos(np.pi * np.clip(t / t_stop, 0.0, 1.0)))
    return np.clip(speed, 0.0, MAX_EGO_SPEED)


def make_ego_track(
    rng: np.random.Generator, n_frames: int
) -> tuple[Road, np.ndarray, np.ndarray, np.ndarray]:
    """The road and the ego's keyframe poses on it.

    Args:
        rng: random generator.
        n_frames: number of keyframes T.

    Returns:
        ``road``, ``s`` ``(T,)`` ego arc lengths, ``speed`` ``(T,)``, and ``t`` ``(T,)``
        seconds from the scene start.
    """
    duration = (n_frames - 1) * KEYFRAME_INTERVAL_US * 1e-6
    fine_t = np.linspace(0.0, duration, max(int(round(duration / 0.05)), 1) + 1)
    fine_v = ego_speed_profile(rng, fine_t)
    fine_s = np.concatenate([[0.0], np.cumsum(0.5 * (fine_v[1:] + fine_v[:-1]) * np.diff(fine_t))])
    t = np.arange(n_frames) * KEYFRAME_INTERVAL_US * 1e-6
    s = np.interp(t, fine_t, fine_s)
    speed = np.interp(t, fine_t, fine_v)
    road = make_road(rng, float(fine_s[-1]))
    return road, s, speed, t


def shift_to_positive(road: Road, ego_xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move the road so that every ego position is at least 80 m from the global axes.

    The map masks of the devkit index pixels from the global origin, so the ego region must
    lie in the positive quadrant.

    Args:
        road: the road (modified in place).
        ego_xy: ``(T, 2)`` ego positions before the shift.
        rng: random generator.

    Returns:
        ``(T, 2)`` shifted ego positions.
    """
    offset = 80.0 - ego_xy.min(axis=0) + rng.uniform(0.0, 40.0, size=2)
    road.xy = road.xy + offset
    return ego_xy + offset


def ego_footprint_center(ego_xy: np.ndarray, ego_yaw: np.ndarray) -> np.ndarray:
    """Centres ``(T, 2)`` of the ego body, ``EGO_CENTER_AHEAD`` ahead of the rear axle."""
    return ego_xy + EGO_CENTER_AHEAD * np.stack([np.cos(ego_yaw), np.sin(ego_yaw)], axis=-1)
