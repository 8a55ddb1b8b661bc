"""The sensor rig of the generated world: six nuScenes-like cameras and LIDAR_TOP.

Intrinsics and mounting positions follow the nuScenes rig (values at 1600 x 900 pixels,
scaled to the requested image size); camera axes follow nuScenes (z forward, x right,
y down). LIDAR_TOP is mounted 1.84 m high and rotated -90 deg about z, as in nuScenes, so
its x axis points to the ego's right and its y axis forward. Each scene gets its own
calibration with small deterministic mounting jitter, like nuScenes logs of different cars.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.bbox.box_layout import CAMERA_NAMES
from .geometry import yaw_matrix

NUSCENES_IMAGE_SIZE = (1600, 900)
LIDAR_TRANSLATION = (0.985, 0.0, 1.84)
LIDAR_YAW = -np.pi / 2.0

# channel: (yaw deg, focal length px at 1600 x 900, cx, cy, translation in the ego frame)
_RIG: dict[str, tuple[float, float, float, float, tuple[float, float, float]]] = {
    "CAM_FRONT": (0.0, 1266.4, 816.3, 491.5, (1.70, 0.016, 1.51)),
    "CAM_FRONT_RIGHT": (-55.0, 1260.8, 808.0, 495.3, (1.55, -0.49, 1.50)),
    "CAM_FRONT_LEFT": (55.0, 1272.6, 826.6, 479.8, (1.52, 0.49, 1.51)),
    "CAM_BACK": (180.0, 809.2, 829.2, 481.8, (0.03, 0.02, 1.56)),
    "CAM_BACK_LEFT": (110.0, 1256.7, 817.8, 452.0, (1.04, 0.48, 1.56)),
    "CAM_BACK_RIGHT": (-110.0, 1259.5, 807.3, 501.2, (1.03, -0.48, 1.57)),
}

# Columns: the camera's x (right), y (down), z (forward) axes in the frame of a sensor
# looking along ego +x.
_CAMERA_AXES = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class SensorCalibration:
    """One calibrated sensor.

    Attributes:
        channel: nuScenes channel name.
        rotation: ``(3, 3)`` sensor-to-ego rotation.
        translation: ``(3,)`` sensor position in the ego frame.
        intrinsic: ``(3, 3)`` camera matrix, or None for the LiDAR.
        image_size: ``(width, height)`` of the camera's images, or None for the LiDAR.
    """

    channel: str
    rotation: np.ndarray
    translation: np.ndarray
    intrinsic: np.ndarray | None
    image_size: tuple[int, int] | None


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    """Rotation by ``angle`` about ego axis ``axis`` (0 x, 1 y, 2 z)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.eye(3)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


def camera_calibration(
    channel: str, image_size: tuple[int, int], jitter: np.ndarray
) -> SensorCalibration:
    """The calibration of one camera.

    Args:
        channel: one of ``CAMERA_NAMES``.
        image_size: ``(width, height)`` in pixels.
        jitter: ``(6,)`` mounting perturbation: yaw, pitch, roll (radians), then x, y, z (m).

    Returns:
        The camera's calibration; focal lengths and principal point scale with the size.
    """
    yaw_deg, focal, cx, cy, translation = _RIG[channel]
    sx = image_size[0] / NUSCENES_IMAGE_SIZE[0]
    sy = image_size[1] / NUSCENES_IMAGE_SIZE[1]
    intrinsic = np.array([[focal * sx, 0.0, cx * sx], [0.0, focal * sy, cy * sy], [0.0, 0.0, 1.0]])
    rotation = (
        _axis_rotation(2, np.deg2rad(yaw_deg) + jitter[0])
        @ _axis_rotation(1, jitter[1])
        @ _axis_rotation(0, jitter[2])
        @ _CAMERA_AXES
    )
    return SensorCalibration(channel, rotation, np.asarray(translation) + jitter[3:],
                             intrinsic, tuple(image_size))


def lidar_calibration() -> SensorCalibration:
    """The LIDAR_TOP calibration: 1.84 m high, rotated -90 deg about z."""
    return SensorCalibration("LIDAR_TOP", yaw_matrix(LIDAR_YAW), np.asarray(LIDAR_TRANSLATION), None, None)


def scene_rig(rng: np.random.Generator, image_size: tuple[int, int]) -> dict[str, SensorCalibration]:
    """The six cameras and the LiDAR of one scene, keyed by channel.

    Args:
        rng: random generator (draws the mounting jitter: 0.3 deg, 1 cm).
        image_size: ``(width, height)`` of the images.

    Returns:
        Calibrations in the order of ``CAMERA_NAMES`` followed by ``LIDAR_TOP``.
    """
    rig = {}
    for channel in CAMERA_NAMES:
        jitter = np.concatenate([rng.normal(0.0, np.deg2rad(0.3), 3), rng.normal(0.0, 0.01, 3)])
        rig[channel] = camera_calibration(channel, image_size, jitter)
    rig["LIDAR_TOP"] = lidar_calibration()
    return rig
