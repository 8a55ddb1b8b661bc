"""GT boxes -> per-camera foreground / background masks of feature maps."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.fg_masks import (
    background_weights,
    box_cell_weights,
    foreground_background_masks,
    project_boxes_to_images,
)
from tests.fixtures.batches import camera

IMAGE = (80, 100)  # (H, W) pixels
FEAT = (8, 10)  # (h, w) cells: stride 10


def _lidar2img(yaw: float) -> torch.Tensor:
    """(4, 4) pinhole camera at the origin looking along ``yaw`` (f=100, c=(50, 40))."""
    return camera(yaw, IMAGE, focal=100.0)[0]


def _box(x: float, y: float, z: float, l: float, w: float, h: float) -> list[float]:
    return [x, y, z, l, w, h, 0.0, 0.0, 0.0]


def test_cube_in_front_projects_to_its_near_face() -> None:
    # Near face at depth 9, lateral / vertical extent +-1 -> 100 / 9 pixels around the centre.
    boxes = torch.tensor([_box(10, 0, 0, 2, 2, 2)])
    rects, visible = project_boxes_to_images(boxes, _lidar2img(0.0)[None], IMAGE)
    half = 100.0 / 9.0
    torch.testing.assert_close(rects[0, 0], torch.tensor([50 - half, 40 - half, 50 + half, 40 + half]))
    assert visible.tolist() == [[True]]


def test_known_box_lands_on_the_right_cells() -> None:
    # Rectangle (38.9, 28.9)-(61.1, 51.1) px -> cells cols 3..6, rows 2..5 (16 cells).
    boxes = [torch.tensor([_box(10, 0, 0, 2, 2, 2)])]
    fg, bg = foreground_background_masks(boxes, _lidar2img(0.0)[None, None], [IMAGE], FEAT)
    expected = torch.zeros(1, *FEAT)
    expected[0, 2:6, 3:7] = 1.0 / 16
    torch.testing.assert_close(fg, expected)
    expected_bg = (expected == 0).float() / (80 - 16)
    torch.testing.assert_close(bg, expected_bg)
    assert fg.sum().item() == pytest.approx(1.0) and bg.sum().item() == pytest.approx(1.0)


def test_box_crossing_the_near_plane_uses_edge_crossings() -> None:
    # x in [-1, 5] (partly behind the camera), y in [0.5, 1.5] (to the left), z in [-1, 1].
    # The visible part reaches the near plane, so it spans the image's left edge and full
    # height; its right edge is the far face's inner side: u = 50 - 100 * 0.5 / 5 = 40.
    boxes = torch.tensor([_box(2, 1, 0, 6, 1, 2)])
    rects, visible = project_boxes_to_images(boxes, _lidar2img(0.0)[None], IMAGE)
    torch.testing.assert_close(rects[0, 0], torch.tensor([0.0, 0.0, 40.0, 80.0]))
    assert visible.item()


def test_box_behind_or_outside_the_image_is_dropped() -> None:
    boxes = torch.tensor([_box(-10, 0, 0, 2, 2, 2), _box(10, 40, 0, 2, 2, 2)])
    _, visible = project_boxes_to_images(boxes, _lidar2img(0.0)[None], IMAGE)
    assert visible.tolist() == [[False, False]]
    fg, bg = foreground_background_masks([boxes], _lidar2img(0.0)[None, None], [IMAGE], FEAT)
    assert fg.abs().sum().item() == 0.0
    torch.testing.assert_close(bg, torch.full((1, *FEAT), 1.0 / 80))


def test_overlapping_boxes_keep_the_largest_weight() -> None:
    rects = torch.tensor([[[0.0, 0.0, 40.0, 40.0], [10.0, 10.0, 20.0, 20.0]]])
    weights = box_cell_weights(rects, torch.tensor([[True, True]]), IMAGE, FEAT)
    expected = torch.zeros(1, *FEAT)
    expected[0, :4, :4] = 1.0 / 16
    expected[0, 1, 1] = 1.0
    torch.testing.assert_close(weights, expected)


def test_cells_are_those_overlapped_with_positive_area() -> None:
    # x 15..30 px -> cells [1.5, 3.0) -> cols 1, 2; y 20..21 px -> row 2 only.
    rects = torch.tensor([[[15.0, 20.0, 30.0, 21.0]]])
    weights = box_cell_weights(rects, torch.tensor([[True]]), IMAGE, FEAT)
    assert weights[0].nonzero().tolist() == [[2, 1], [2, 2]]
    assert weights[0, 2, 1].item() == pytest.approx(0.5)


def test_camera_order_and_empty_samples() -> None:
    lidar2img = torch.stack((_lidar2img(0.0), _lidar2img(math.pi)))[None].repeat(2, 1, 1, 1)
    boxes = [torch.zeros(0, 9), torch.tensor([_box(-10, 0, 0, 2, 2, 2)])]
    fg, bg = foreground_background_masks(boxes, lidar2img, [IMAGE, IMAGE], FEAT)
    assert fg.shape == (4, *FEAT) and bg.shape == (4, *FEAT)
    # Only sample 1, camera 1 (looking along -x) sees the box behind the LiDAR.
    assert [bool(fg[i].any()) for i in range(4)] == [False, False, False, True]
    torch.testing.assert_close(bg.sum(dim=(1, 2)), torch.ones(4))


def test_background_of_a_fully_covered_image_is_zero() -> None:
    assert background_weights(torch.full((1, 2, 2), 0.25)).abs().sum().item() == 0.0


def test_inconsistent_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="B=1"):
        foreground_background_masks([torch.zeros(0, 9)] * 2, torch.eye(4).expand(1, 6, 4, 4), [IMAGE], FEAT)
    with pytest.raises(ValueError, match=r"\(B, N, 4, 4\)"):
        foreground_background_masks([torch.zeros(0, 9)], torch.eye(4).expand(6, 4, 4), [IMAGE], FEAT)
    with pytest.raises(ValueError, match=r"boxes must be \(M, 9\)"):
        project_boxes_to_images(torch.zeros(3, 4), torch.eye(4)[None], IMAGE)
