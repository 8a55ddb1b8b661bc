"""Generate one scene: its layout, sensor data files and nuScenes records.

Every random draw of a scene comes from ``numpy.random.default_rng([seed, index])``, so a
scene's bytes depend only on the world seed and its position in the scene table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from ...core.bbox.box_layout import CAMERA_NAMES
from .cameras import SensorCalibration, scene_rig
from .geometry import matrix_quaternion, yaw_quaternion
from .lidar import boxes_in_ego, cast_sweep, count_points_in_boxes
from .placement import MAX_OBJECTS, NEAR_EGO, place_objects
from .background import CameraBackground, camera_background
from .renderer import BoxSet, render_camera
from .scene_layout import KEYFRAME_INTERVAL_US, SceneLayout, make_ego_track, shift_to_positive
from .tables import make_token, visibility_token

FIRST_TIMESTAMP_US = 1_531_883_530_000_000
JPEG_QUALITY = 90
LOCATIONS: dict[str, tuple[str, int]] = {
    "singapore-onenorth": ("n015", 8),
    "singapore-queenstown": ("n015", 8),
    "singapore-hollandvillage": ("n015", 8),
    "boston-seaport": ("n008", -4),
}


@dataclass
class SceneResult:
    """What one generated scene adds to the world.

    Attributes:
        tables: records per nuScenes table name.
        location: the log's location (selects the map).
        log_token: the scene's log.
        ego_xy: ``(T, 2)`` global ego positions (for the map).
    """

    tables: dict[str, list[dict]] = field(default_factory=dict)
    location: str = ""
    log_token: str = ""
    ego_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def build_layout(rng: np.random.Generator, n_frames: int, t0: int) -> SceneLayout:
    """The road, ego trajectory and objects of one scene starting at ``t0`` (µs)."""
    road, ego_s, speed, t = make_ego_track(rng, n_frames)
    ego_xy, ego_yaw = road.pose(ego_s, 0.0)
    ego_xy = shift_to_positive(road, ego_xy, rng)
    timestamps = t0 + np.arange(n_frames, dtype=np.int64) * KEYFRAME_INTERVAL_US
    layout = SceneLayout(timestamps=timestamps, ego_xy=ego_xy, ego_yaw=np.angle(np.exp(1j * ego_yaw)),
                         ego_speed=speed, road=road)
    layout.objects = place_objects(rng, layout, ego_s, t, objects_for_density(rng, ego_s))
    return layout


def objects_for_density(rng: np.random.Generator, ego_s: np.ndarray) -> int:
    """How many objects a scene needs for 15-40 of them around the ego at any keyframe.

    Objects are spread over the ego's path plus ``NEAR_EGO`` metres at both ends; about
    100 m of that road are within 50 m of the ego at a time.
    """
    per_frame = int(rng.integers(15, 41))
    road_length = float(ego_s.max() - ego_s.min()) + 2.0 * NEAR_EGO
    return int(np.clip(round(per_frame * road_length / 100.0), per_frame, MAX_OBJECTS))


def frame_boxes(layout: SceneLayout, frame: int) -> BoxSet:
    """All objects of the scene at one keyframe, as global boxes."""
    objs = layout.objects
    lwh = np.stack([o.lwh for o in objs])
    center = np.stack([np.append(o.xy[frame], o.lwh[2] / 2.0) for o in objs])
    return BoxSet(center=center, lwh=lwh, yaw=np.array([o.yaw[frame] for o in objs]),
                  colour=np.stack([o.colour for o in objs]),
                  accent=np.stack([np.asarray(o.cls.accent, dtype=float) for o in objs]),
                  names=[o.cls.name for o in objs])


def _log_record(token: str, location: str, t0: int) -> dict:
    """The ``log`` record of a scene; the logfile name encodes vehicle and local start time."""
    vehicle, utc_offset = LOCATIONS[location]
    tz = timezone(timedelta(hours=utc_offset))
    start = datetime.fromtimestamp(t0 / 1e6, tz=tz)
    logfile = f"{vehicle}-{start:%Y-%m-%d-%H-%M-%S}{start:%z}"
    return {"token": token, "logfile": logfile, "vehicle": vehicle,
            "date_captured": f"{start:%Y-%m-%d}", "location": location}


def _calibration_records(prefix: str, rig: dict[str, SensorCalibration]) -> list[dict]:
    """One ``calibrated_sensor`` record per channel of the scene's rig."""
    return [
        {
            "token": make_token(prefix, "calibrated_sensor", channel),
            "sensor_token": make_token("sensor", channel),
            "translation": [float(v) for v in calib.translation],
            "rotation": matrix_quaternion(calib.rotation),
            "camera_intrinsic": [] if calib.intrinsic is None else calib.intrinsic.tolist(),
        }
        for channel, calib in rig.items()
    ]


def _chain(records: list[dict]) -> list[dict]:
    """Set ``prev``/``next`` of consecutive records (empty string at both ends)."""
    for i, record in enumerate(records):
        record["prev"] = records[i - 1]["token"] if i > 0 else ""
        record["next"] = records[i + 1]["token"] if i + 1 < len(records) else ""
    return records


@dataclass
class _SceneContext:
    """What every keyframe of a scene needs to write its files and records."""

    prefix: str
    root: Path
    logfile: str
    layout: SceneLayout
    rig: dict[str, SensorCalibration]
    backgrounds: dict[str, CameraBackground]
    rng: np.random.Generator


def _sensor_records(ctx: _SceneContext, frame: int, channel: str, filename: str) -> tuple[dict, dict]:
    """The ``ego_pose`` and ``sample_data`` records of one channel at one keyframe."""
    ts = int(ctx.layout.timestamps[frame])
    xy = ctx.layout.ego_xy[frame]
    pose = {"token": make_token(ctx.prefix, "ego_pose", channel, frame),
            "timestamp": ts, "rotation": yaw_quaternion(float(ctx.layout.ego_yaw[frame])),
            "translation": [float(xy[0]), float(xy[1]), 0.0]}
    size = ctx.rig[channel].image_size or (0, 0)
    data = {"token": make_token(ctx.prefix, "sample_data", channel, frame),
            "sample_token": make_token(ctx.prefix, "sample", frame),
            "ego_pose_token": pose["token"],
            "calibrated_sensor_token": make_token(ctx.prefix, "calibrated_sensor", channel),
            "timestamp": ts, "fileformat": "pcd" if channel == "LIDAR_TOP" else "jpg",
            "is_key_frame": True, "height": int(size[1]), "width": int(size[0]), "filename": filename}
    return pose, data


def _write_frame(ctx: _SceneContext, frame: int, sensor_data: dict[str, list[dict]],
                 ego_poses: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Render and write one keyframe's images and sweep; append their records.

    Returns:
        ``visible_fraction`` ``(N,)`` per object and ``num_lidar_pts`` ``(N,)`` per object.
    """
    layout, ts = ctx.layout, int(ctx.layout.timestamps[frame])
    boxes = frame_boxes(layout, frame)
    visible, area = np.zeros(len(boxes.names)), np.zeros(len(boxes.names))
    for channel in CAMERA_NAMES:
        image, vis, ar = render_camera(ctx.backgrounds[channel], ctx.rig[channel], layout.ego_xy[frame],
                                       float(layout.ego_yaw[frame]), boxes)
        visible, area = visible + vis, area + ar
        filename = f"samples/{channel}/{ctx.logfile}__{channel}__{ts}.jpg"
        Image.fromarray(image).save(ctx.root / filename, quality=JPEG_QUALITY)
        pose, data = _sensor_records(ctx, frame, channel, filename)
        ego_poses.append(pose)
        sensor_data[channel].append(data)
    lidar = ctx.rig["LIDAR_TOP"]
    reflectivity = np.array([o.cls.reflectivity for o in layout.objects])
    points = cast_sweep(lidar, layout.ego_xy[frame], float(layout.ego_yaw[frame]), boxes, reflectivity, ctx.rng)
    filename = f"samples/LIDAR_TOP/{ctx.logfile}__LIDAR_TOP__{ts}.pcd.bin"
    points.tofile(ctx.root / filename)
    pose, data = _sensor_records(ctx, frame, "LIDAR_TOP", filename)
    ego_poses.append(pose)
    sensor_data["LIDAR_TOP"].append(data)
    center, yaw = boxes_in_ego(boxes, layout.ego_xy[frame], float(layout.ego_yaw[frame]))
    counts = count_points_in_boxes(points, lidar, center, boxes.lwh, yaw)
    return np.clip(visible / np.maximum(area, 1.0), 0.0, 1.0) * (area > 0), counts


def _annotation(ctx: _SceneContext, n: int, frame: int, visible: float, num_pts: int) -> dict:
    """The ``sample_annotation`` record of object ``n`` at ``frame``."""
    obj = ctx.layout.objects[n]
    attribute = [] if obj.attribute is None else [make_token("attribute", obj.attribute)]
    return {"token": make_token(ctx.prefix, "sample_annotation", n, frame),
            "sample_token": make_token(ctx.prefix, "sample", frame),
            "instance_token": make_token(ctx.prefix, "instance", n),
            "visibility_token": visibility_token(visible), "attribute_tokens": attribute,
            "translation": [float(obj.xy[frame, 0]), float(obj.xy[frame, 1]), float(obj.lwh[2] / 2.0)],
            "size": [float(obj.lwh[1]), float(obj.lwh[0]), float(obj.lwh[2])],
            "rotation": yaw_quaternion(float(obj.yaw[frame])),
            "num_lidar_pts": int(num_pts), "num_radar_pts": 0}


def _instances(ctx: _SceneContext, annotations: list[list[dict]]) -> list[dict]:
    """One ``instance`` record per object, linked to its first and last annotation."""
    return [{"token": make_token(ctx.prefix, "instance", n),
             "category_token": make_token("category", obj.category),
             "nbr_annotations": len(anns),
             "first_annotation_token": anns[0]["token"], "last_annotation_token": anns[-1]["token"]}
            for n, (obj, anns) in enumerate(zip(ctx.layout.objects, annotations))]


def generate_scene(index: int, name: str, seed: int, n_frames: int, image_size: tuple[int, int],
                   root: Path, tiles: np.ndarray) -> SceneResult:
    """Generate the scene at ``index`` of the scene table; write its files under ``root``.

    Args:
        index: position in the scene table (selects the random stream and start time).
        name: the scene name (from the devkit's split lists).
        seed: world seed.
        n_frames: keyframes in the scene.
        image_size: ``(width, height)`` of the camera images.
        root: data root being written (``samples/<channel>/`` must exist).
        tiles: the ground texture of :func:`.background.ground_tiles`.

    Returns:
        The scene's records and what the map needs.
    """
    rng = np.random.default_rng([seed, index])
    location = str(rng.choice(list(LOCATIONS)))
    t0 = FIRST_TIMESTAMP_US + index * 3_600_000_000 + int(rng.integers(0, 600_000_000))
    layout = build_layout(rng, n_frames, t0)
    rig = scene_rig(rng, image_size)
    prefix = make_token(seed, "scene", index)
    log = _log_record(make_token(prefix, "log"), location, t0)
    ctx = _SceneContext(prefix, root, log["logfile"], layout, rig,
                        {c: camera_background(rig[c], tiles) for c in CAMERA_NAMES}, rng)
    sensor_data: dict[str, list[dict]] = {channel: [] for channel in rig}
    ego_poses: list[dict] = []
    annotations: list[list[dict]] = [[] for _ in layout.objects]
    for frame in range(n_frames):
        visible, counts = _write_frame(ctx, frame, sensor_data, ego_poses)
        for n, obj in enumerate(layout.objects):
            if frame in obj.frames:
                annotations[n].append(_annotation(ctx, n, frame, visible[n], counts[n]))
    samples = _chain([{"token": make_token(prefix, "sample", i), "timestamp": int(layout.timestamps[i]),
                       "scene_token": make_token(prefix, "scene")} for i in range(n_frames)])
    scene = {"token": make_token(prefix, "scene"), "log_token": log["token"], "nbr_samples": n_frames,
             "first_sample_token": samples[0]["token"], "last_sample_token": samples[-1]["token"],
             "name": name, "description": _describe(layout)}
    tables = {"log": [log], "scene": [scene], "sample": samples, "ego_pose": ego_poses,
              "calibrated_sensor": _calibration_records(prefix, rig),
              "sample_data": [r for recs in sensor_data.values() for r in _chain(recs)],
              "instance": _instances(ctx, annotations),
              "sample_annotation": [a for anns in annotations for a in _chain(anns)]}
    return SceneResult(tables=tables, location=location, log_token=log["token"], ego_xy=layout.ego_xy)


def _describe(layout: SceneLayout) -> str:
    """A short scene description in the style of nuScenes (what the ego does, what is around)."""
    speed = float(layout.ego_speed.mean())
    motion = "ego stopped" if speed < 0.5 else f"ego driving {speed:.1f} m/s"
    moving = sum(1 for o in layout.objects if np.linalg.norm(o.xy[-1] - o.xy[0]) > 0.5)
    return f"Generated scene, {motion}, {len(layout.objects)} objects ({moving} moving)"
