"""Sky and ground of the generated camera images.

The ground is the global plane ``z = 0`` with a periodic texture: a 10 m checker of two
asphalt tones and light grid lines every 5 m. The ego pose is flat (z = 0, no roll or
pitch), so the ground point seen by every pixel is fixed in the ego frame: it is found once
per camera by ray-plane intersection (:func:`camera_background`) and only moved into the
global frame per keyframe (:func:`render_background`). To avoid aliasing the texture is
sampled from a small mip chain chosen by each pixel's ground footprint, and far ground
fades into haze. The sky is a vertical gradient from a pale horizon to a blue zenith.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import SensorCalibration

TEXTURE_PERIOD = 20.0
TEXTURE_PIXELS = 512  # per period (3.9 cm); a power of two so wrapping is a bit mask
GRID_SPACING = 5.0
GRID_LINE_WIDTH = 0.18
_ASPHALT = (np.array([85.0, 87.0, 91.0]), np.array([99.0, 101.0, 105.0]))
_GRID_LINE = np.array([205.0, 205.0, 190.0])
_SKY_ZENITH = np.array([70.0, 120.0, 200.0])
_SKY_HORIZON = np.array([200.0, 215.0, 230.0])
_HAZE_DISTANCE = 200.0
_MIP_BLUR = (0.0, 0.4, 1.5)  # box-filter widths (m) of levels 0-2; level 3 is the mean colour
_MIP_FOOTPRINT = (0.12, 0.5, 1.8)  # footprint (m) above which the next level is used


@dataclass
class CameraBackground:
    """Per-camera constants of the background.

    Attributes:
        base: ``(H, W, 3)`` uint8 image of everything that does not move with the ego: the
            sky and the far ground (uniform mip level, fading into haze).
        near_index: ``(G,)`` flat indices of the pixels that see textured near ground.
        near_xy: ``(G, 2)`` float32 ego-frame ground points of those pixels.
        near_offset: ``(G,)`` int32 offset of each pixel's mip level in ``tiles``.
        tiles: ``(3 * P * P, 3)`` uint8 flattened texture levels 0-2, P = TEXTURE_PIXELS.
    """

    base: np.ndarray
    near_index: np.ndarray
    near_xy: np.ndarray
    near_offset: np.ndarray
    tiles: np.ndarray


def grid_line_mask(xy: np.ndarray) -> np.ndarray:
    """Whether global ground points ``(..., 2)`` lie on a grid line → bool ``(...)``."""
    offset = np.abs(xy / GRID_SPACING - np.round(xy / GRID_SPACING)) * GRID_SPACING
    return (offset < GRID_LINE_WIDTH / 2.0).any(axis=-1)


def ground_tiles() -> np.ndarray:
    """The ground texture over one period and its blurred levels → ``(4, P, P, 3)`` float32.

    Level 3 is the texture's mean colour everywhere.
    """
    from scipy.ndimage import uniform_filter

    coords = (np.arange(TEXTURE_PIXELS) + 0.5) * (TEXTURE_PERIOD / TEXTURE_PIXELS)
    xy = np.stack(np.meshgrid(coords, coords, indexing="xy"), axis=-1)
    checker = ((np.floor(xy[..., 0] / 10.0) + np.floor(xy[..., 1] / 10.0)) % 2.0).astype(int)
    tile = np.where(checker[..., None] == 1, _ASPHALT[1], _ASPHALT[0])
    tile[grid_line_mask(xy)] = _GRID_LINE
    levels = [tile]
    for blur in _MIP_BLUR[1:]:
        width = max(int(round(blur * TEXTURE_PIXELS / TEXTURE_PERIOD)), 1)
        levels.append(uniform_filter(tile, size=(width, width, 1), mode="wrap"))
    levels.append(np.broadcast_to(tile.mean(axis=(0, 1)), tile.shape))
    return np.stack(levels).astype(np.float32)


def _pixel_rays(calib: SensorCalibration) -> np.ndarray:
    """Unit ego-frame ray directions ``(H, W, 3)`` through the pixel centres of a camera."""
    width, height = calib.image_size
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float32)
    rays = pixels @ (calib.rotation @ np.linalg.inv(calib.intrinsic)).T.astype(np.float32)
    return rays / np.sqrt(np.sum(rays * rays, axis=-1, keepdims=True))


def camera_background(calib: SensorCalibration, tiles: np.ndarray) -> CameraBackground:
    """Precompute the static image part and the ego-frame ground points of a camera's pixels.

    Args:
        calib: the camera's calibration (its ``image_size`` sets H and W).
        tiles: the texture mip chain of :func:`ground_tiles`.
    """
    rays = _pixel_rays(calib)
    weight = np.clip(rays[..., 2:] / 0.45, 0.0, 1.0) ** 0.7
    image = (1.0 - weight) * _SKY_HORIZON + weight * _SKY_ZENITH
    down = rays[..., 2] < -1e-3
    dist = np.where(down, calib.translation[2] / np.maximum(-rays[..., 2], 1e-3), np.inf)
    ground = dist < 5000.0
    points = calib.translation[:2] + rays[..., :2] * np.where(ground, dist, 0.0)[..., None]
    step_v = np.abs(np.diff(points, axis=0, append=points[-1:])).max(axis=-1)
    step_u = np.abs(np.diff(points, axis=1, append=points[:, -1:])).max(axis=-1)
    footprint = np.maximum(step_u, step_v)
    level = np.where(ground, np.searchsorted(np.asarray(_MIP_FOOTPRINT), footprint), 4)
    far = level == 3
    start = dist[far].min() if far.any() else 0.0
    haze = np.clip((dist[far] - start) / _HAZE_DISTANCE, 0.0, 1.0)[:, None] ** 0.8
    image[far] = (1.0 - haze) * tiles[3, 0, 0] + haze * image[far]
    near = level < 3
    return CameraBackground(
        base=np.clip(image, 0, 255).astype(np.uint8), near_index=np.flatnonzero(near),
        near_xy=points[near].astype(np.float32),
        near_offset=(level[near] * TEXTURE_PIXELS**2).astype(np.int32),
        tiles=np.clip(tiles[:3], 0, 255).astype(np.uint8).reshape(-1, 3),
    )


def render_background(bg: CameraBackground, ego_xy: np.ndarray, ego_yaw: float) -> np.ndarray:
    """The background of one camera at one ego pose.

    Args:
        bg: the camera's precomputed background.
        ego_xy: ``(2,)`` global ego position.
        ego_yaw: global ego heading.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.
    """
    scale = TEXTURE_PIXELS / TEXTURE_PERIOD
    c, s = np.float32(np.cos(ego_yaw) * scale), np.float32(np.sin(ego_yaw) * scale)
    x, y = bg.near_xy[:, 0], bg.near_xy[:, 1]
    gx = (x * c - y * s + np.float32(ego_xy[0] * scale)).astype(np.int32) & (TEXTURE_PIXELS - 1)
    gy = (x * s + y * c + np.float32(ego_xy[1] * scale)).astype(np.int32) & (TEXTURE_PIXELS - 1)
    image = bg.base.copy()
    image.reshape(-1, 3)[bg.near_index] = bg.tiles.take(bg.near_offset + gy * TEXTURE_PIXELS + gx, axis=0)
    return image
