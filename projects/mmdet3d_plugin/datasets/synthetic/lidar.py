"""LIDAR_TOP sweeps of the generated world by ray casting.

A 32-ring spinning LiDAR (elevations -30.67 deg ... +10.67 deg like the nuScenes HDL-32E,
1024 azimuth steps) casts rays from its mount against the ground plane and every box; each
ray keeps its nearest hit within 70 m. Hits on a box are moved 2 cm towards the box centre
(inside the box, so counting points in boxes never depends on rounding); ground hits get
1.5 cm of range noise. Points are stored in the LiDAR frame as float32
``(x, y, z, intensity, ring)``, as in nuScenes ``.pcd.bin`` files.
"""
from __future__ import annotations

import numpy as np

from .cameras import SensorCalibration
from .geometry import yaw_matrix
from .background import grid_line_mask
from .renderer import BoxSet

N_RINGS = 32
N_AZIMUTHS = 1024
MAX_RANGE = 70.0
_ELEVATION_DEG = (-30.67, 10.67)
_INSIDE_NUDGE = 0.02
_GROUND_NOISE = 0.015


def ray_directions(n_rings: int = N_RINGS, n_azimuths: int = N_AZIMUTHS) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions of one sweep in the LiDAR frame.

    Returns:
        ``directions`` ``(n_rings * n_azimuths, 3)`` and ``ring`` ``(n_rings * n_azimuths,)``
        ring indices (0 = lowest).
    """
    elevation = np.deg2rad(np.linspace(*_ELEVATION_DEG, n_rings))
    azimuth = np.linspace(-np.pi, np.pi, n_azimuths, endpoint=False)
    el, az = np.meshgrid(elevation, azimuth, indexing="ij")
    directions = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    ring = np.repeat(np.arange(n_rings), n_azimuths)
    return directions.reshape(-1, 3), ring


def boxes_in_ego(boxes: BoxSet, ego_xy: np.ndarray, ego_yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(N, 3)`` and headings ``(N,)`` of global boxes in the (flat) ego frame."""
    rot = yaw_matrix(ego_yaw)
    center = (boxes.center - np.array([ego_xy[0], ego_xy[1], 0.0])) @ rot
    return center, boxes.yaw - ego_yaw


def _rays_towards(origin: np.ndarray, azimuth: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """Indices of rays whose azimuth can meet a circle (ground plane) around a box."""
    offset = center[:2] - origin[:2]
    dist = float(np.hypot(*offset))
    if dist <= radius:
        return np.arange(len(azimuth))
    half_angle = np.arcsin(radius / dist)
    diff = np.mod(azimuth - np.arctan2(offset[1], offset[0]) + np.pi, 2.0 * np.pi) - np.pi
    return np.flatnonzero(np.abs(diff) <= half_angle)


def _box_hits(origin: np.ndarray, dirs: np.ndarray, center: np.ndarray, lwh: np.ndarray,
              yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ray–box hit per ray (slab test in each box frame).

    Args:
        origin: ``(3,)`` ray origin; dirs ``(R, 3)`` unit directions (ego frame).
        center, lwh, yaw: ``(N, 3)``, ``(N, 3)``, ``(N,)`` boxes in the ego frame.

    Returns:
        ``t`` ``(R,)`` hit distance (inf for no hit) and ``box`` ``(R,)`` hit box index.
    """
    t_best = np.full(len(dirs), np.inf)
    box_best = np.full(len(dirs), -1)
    azimuth = np.arctan2(dirs[:, 1], dirs[:, 0])
    rot = yaw_matrix(yaw)
    for n in range(len(center)):
        rays = _rays_towards(origin, azimuth, center[n], float(np.hypot(*lwh[n, :2])) / 2.0 + 0.1)
        o = (origin - center[n]) @ rot[n]
        d = dirs[rays] @ rot[n]
        half = lwh[n] / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / d
            t2 = (half - o) / d
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        hit = (t_far >= t_near) & (t_near > 0.0) & (t_near < t_best[rays])
        t_best[rays[hit]] = t_near[hit]
        box_best[rays[hit]] = n
    return t_best, box_best


def cast_sweep(calib: SensorCalibration, ego_xy: np.ndarray, ego_yaw: float, boxes: BoxSet,
               reflectivity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One LiDAR sweep at a keyframe.

    Args:
        calib: LIDAR_TOP calibration.
        ego_xy: ``(2,)`` global ego position; ego_yaw its heading.
        boxes: the N boxes of the keyframe (global frame).
        reflectivity: ``(N,)`` intensity of each box's surface.
        rng: random generator (range noise, intensity noise).

    Returns:
        ``(P, 5)`` float32 points ``(x, y, z, intensity, ring)`` in the LiDAR frame.
    """
    dirs_lidar, ring = ray_directions()
    dirs = dirs_lidar @ calib.rotation.T
    origin = calib.translation
    center, yaw = boxes_in_ego(boxes, ego_xy, ego_yaw)
    near = np.linalg.norm(center[:, :2] - origin[:2], axis=1) < MAX_RANGE + boxes.lwh.max(axis=1)
    t_box, hit_box = _box_hits(origin, dirs, center[near], boxes.lwh[near], yaw[near])
    with np.errstate(divide="ignore"):
        t_ground = np.where(dirs[:, 2] < 0.0, -origin[2] / dirs[:, 2], np.inf)
    t = np.minimum(t_box, t_ground)
    keep = t <= MAX_RANGE
    on_box = keep & (t_box <= t_ground)
    on_ground = keep & ~on_box
    points = origin + dirs * np.where(keep, t, 0.0)[:, None]
    points[on_ground] += dirs[on_ground] * rng.normal(0.0, _GROUND_NOISE, (int(on_ground.sum()), 1))
    box_index = np.flatnonzero(near)[hit_box[on_box]]
    to_center = center[box_index] - points[on_box]
    points[on_box] += _INSIDE_NUDGE * to_center / np.linalg.norm(to_center, axis=1, keepdims=True)
    intensity = np.zeros(len(dirs))
    intensity[on_box] = reflectivity[box_index]
    world = points[on_ground, :2] @ yaw_matrix(ego_yaw)[:2, :2].T + ego_xy
    intensity[on_ground] = np.where(grid_line_mask(world), 90.0, 12.0)
    intensity = np.clip(intensity + rng.normal(0.0, 3.0, len(dirs)), 0.0, 255.0)
    lidar_xyz = (points - origin) @ calib.rotation
    out = np.concatenate([lidar_xyz, intensity[:, None], ring[:, None]], axis=1)[keep]
    return out.astype(np.float32)


def count_points_in_boxes(points: np.ndarray, calib: SensorCalibration, center: np.ndarray,
                          lwh: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """How many LiDAR points fall inside each box (boundary inclusive).

    Args:
        points: ``(P, >=3)`` points in the LiDAR frame (as stored).
        calib: LIDAR_TOP calibration.
        center, lwh, yaw: ``(N, 3)``, ``(N, 3)``, ``(N,)`` boxes in the ego frame.

    Returns:
        ``(N,)`` int64 point counts.
    """
    ego = points[:, :3].astype(np.float64) @ calib.rotation.T + calib.translation
    rot = yaw_matrix(yaw)
    counts = np.zeros(len(center), dtype=np.int64)
    for n in range(len(center)):
        reach = float(np.linalg.norm(lwh[n])) / 2.0
        near = np.flatnonzero((np.abs(ego[:, 0] - center[n, 0]) <= reach) & (np.abs(ego[:, 1] - center[n, 1]) <= reach))
        local = (ego[near] - center[n]) @ rot[n]
        counts[n] = int(np.all(np.abs(local) <= lwh[n] / 2.0, axis=1).sum())
    return counts
