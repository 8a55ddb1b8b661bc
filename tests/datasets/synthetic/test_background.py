"""Sky and textured ground of the camera images."""
from __future__ import annotations

import numpy as np

from projects.mmdet3d_plugin.datasets.synthetic.background import (
    GRID_SPACING, camera_background, grid_line_mask, ground_tiles, render_background)
from projects.mmdet3d_plugin.datasets.synthetic.cameras import scene_rig


def test_sky_above_ground_below_and_ground_moves_with_ego() -> None:
    calib = scene_rig(np.random.default_rng(0), (320, 180))["CAM_FRONT"]
    bg = camera_background(calib, ground_tiles())
    image = render_background(bg, np.array([50.0, 50.0]), 0.0).astype(int)
    horizon = int(round(calib.intrinsic[1, 2]))
    assert image[5, :, 2].mean() > image[5, :, 0].mean() + 60  # blue sky
    bottom = image[-5:]
    assert np.abs(bottom[..., 0] - bottom[..., 2]).mean() < 20  # grey ground
    blue = image[..., 2] - image[..., 0]
    assert np.all(blue[: horizon - 10] > 40) and np.all(blue[horizon + 10:] < 15)
    moved = render_background(bg, np.array([51.3, 50.0]), 0.0).astype(int)
    assert not np.array_equal(moved[horizon + 20:], image[horizon + 20:])
    assert np.array_equal(moved[: horizon - 10], image[: horizon - 10])
    period = render_background(bg, np.array([50.0 + 20.0, 50.0]), 0.0).astype(int)
    assert np.abs(period - image).max() <= 1


def test_grid_lines() -> None:
    xy = np.array([[GRID_SPACING * 3, 1.3], [2.4, 2.6], [1.0, -GRID_SPACING]])
    assert grid_line_mask(xy).tolist() == [True, False, True]
    tiles = ground_tiles()
    assert tiles.shape[0] == 4 and np.all(np.ptp(tiles[3], axis=(0, 1)) == 0.0) and np.ptp(tiles[0]) > 100
