"""ResizeCropFlipRotImage: parameters, pixel/matrix agreement, and annotation bookkeeping."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.datasets.pipelines.image_aug import (
    ImageAugParams,
    ResizeCropFlipRotImage,
    augment_image,
    ida_matrix,
)
from projects.mmdet3d_plugin.datasets.pipelines.loading import LoadAnnotations3D, LoadMultiViewImageFromFiles

UPSTREAM_CONF = dict(resize_lim=(0.38, 0.55), final_dim=(256, 704), bot_pct_lim=(0.0, 0.0),
                     rot_lim=(0.0, 0.0), H=900, W=1600, rand_flip=True)
RIG_CONF = dict(resize_lim=(0.8, 1.2), final_dim=(64, 128), bot_pct_lim=(0.0, 0.15),
                rot_lim=(-12.0, 12.0), H=96, W=160, rand_flip=True)


def test_test_mode_is_upstream_resize_and_bottom_crop() -> None:
    params = ResizeCropFlipRotImage(UPSTREAM_CONF, training=False).sample_augmentation()
    assert params == ImageAugParams(0.44, (704, 396), (0, 140, 704, 396), False, 0.0)


def test_train_draws_stay_in_range() -> None:
    aug = ResizeCropFlipRotImage(UPSTREAM_CONF, training=True)
    torch.manual_seed(0)
    flips = set()
    for _ in range(20):
        p = aug.sample_augmentation()
        assert 0.38 * 1600 - 1 <= p.resize_dims[0] <= 0.55 * 1600
        assert p.crop[3] == p.resize_dims[1] and p.crop[2] - p.crop[0] == 704
        assert 0 <= p.crop[0] <= max(0, p.resize_dims[0] - 704) and p.rotate == 0.0
        flips.add(p.flip)
    assert flips == {True, False}


def test_ida_matrix_without_rotation_is_scale_crop_flip() -> None:
    params = ImageAugParams(0.5, (800, 450), (30, 100, 382, 228), True, 0.0)
    ida = ida_matrix(params)
    np.testing.assert_allclose(ida, [[-0.5, 0, 352 + 30], [0, 0.5, -100], [0, 0, 1]])


def test_intrinsics_and_boxes_scale_by_the_drawn_float_not_the_integer_size(rig_results) -> None:
    # upstream: image resized to (int(160 * 0.83), int(96 * 0.83)) = (132, 79), but
    # ida_rot *= resize and bboxes * resize use 0.83 itself; crop_h = 79 - 64 = 15.
    conf = dict(RIG_CONF, resize_lim=(0.83, 0.83), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
                rand_flip=False)
    aug = ResizeCropFlipRotImage(conf, filter_invisible=False, training=True)
    assert aug.sample_augmentation().resize_dims == (132, 79)
    results = rig_results()
    box = results["gt_bboxes"][0][0].astype(np.float64)
    out = aug(results)
    k = out["intrinsics"][0]
    np.testing.assert_allclose([k[0, 0], k[1, 1], k[1, 2]], [90 * 0.83, 92 * 0.83, 50 * 0.83 - 15], atol=1e-9)
    crop_w = 78 * 0.83 - k[0, 2]
    assert abs(crop_w - round(crop_w)) < 1e-9 and 0 <= round(crop_w) <= 132 - 128
    expected = np.r_[box[[0, 2]] * 0.83 - round(crop_w), box[[1, 3]] * 0.83 - 15]
    np.testing.assert_allclose(out["gt_bboxes"][0][0][[0, 2, 1, 3]], expected, atol=1e-4)


def test_centre_outside_the_crop_lands_on_the_border(rig_results) -> None:
    # x: 165 * 0.83 - crop_w >= 132.8 > fW = 128 -> 128; y: 20 * 0.83 - 15 = 1.6 (inside).
    conf = dict(RIG_CONF, resize_lim=(0.83, 0.83), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
                rand_flip=False)
    results = rig_results()
    results["gt_bboxes"][0] = np.array([[150.0, 10.0, 160.0, 30.0]], np.float32)
    results["gt_labels"][0] = np.array([3])
    results["centers2d"][0] = np.array([[165.0, 20.0]], np.float32)
    results["depths"][0] = np.array([12.0], np.float32)
    out = ResizeCropFlipRotImage(conf, training=True)(results)
    assert out["gt_labels"][0].tolist() == [3]
    np.testing.assert_allclose(out["centers2d"][0], [[128.0, 20 * 0.83 - 15]], atol=1e-5)


def test_flip_mirrors_pixel_columns_and_projection() -> None:
    img = np.zeros((6, 10, 3), dtype=np.float32)
    img[:, 3] = 255.0
    params = ImageAugParams(1.0, (10, 6), (0, 0, 10, 6), True, 0.0)
    flipped = augment_image(img, params)
    assert np.flatnonzero(flipped[0, :, 0] > 128).tolist() == [10 - 1 - 3]
    intrinsic = np.array([[5.0, 0.0, 5.0], [0.0, 5.0, 3.0], [0.0, 0.0, 1.0]])
    point = np.array([-0.3, 0.1, 1.0])  # camera frame: projects into column 3
    uv = (intrinsic @ point)[:2] / point[2]
    flipped_k = ida_matrix(params) @ intrinsic
    uv_f = (flipped_k @ point)[:2] / point[2]
    assert int(uv[0]) == 3
    np.testing.assert_allclose(uv_f, [10 - uv[0], uv[1]])
    assert int(np.floor(uv_f[0])) == 10 - 1 - 3


def test_rotation_moves_pixels_with_the_matrix() -> None:
    img = np.zeros((60, 80, 3), dtype=np.float32)
    img[10:16, 60:66] = 200.0  # a block centred at (63, 13)
    params = ImageAugParams(1.0, (80, 60), (0, 0, 80, 60), False, 25.0)
    out = augment_image(img, params)
    u, v, _ = ida_matrix(params) @ np.array([63.0, 13.0, 1.0])
    assert out[int(v), int(u)].min() > 150
    assert out[13, 63].max() < 50  # rotated away from its old place


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_rig_projection_and_colours_after_train_aug(seed: int, rig_results, check_augmented_sample) -> None:
    results = rig_results()
    before = copy.deepcopy(results)
    torch.manual_seed(seed)
    after = ResizeCropFlipRotImage(RIG_CONF, filter_invisible=False, training=True)(results)
    assert after["img_shape"] == (64, 128)
    assert all(img.shape == (64, 128, 3) and img.dtype == np.float32 for img in after["img"])
    assert check_augmented_sample(before, after, radius=3) >= 1


def test_rig_flip_and_rotation_are_exercised() -> None:
    aug = ResizeCropFlipRotImage(RIG_CONF, training=True)
    draws = []
    for seed in range(6):
        torch.manual_seed(seed)
        draws.append(aug.sample_augmentation())
    assert {p.flip for p in draws} == {True, False}
    assert all(p.rotate != 0.0 for p in draws)


def test_rig_test_mode(rig_results, check_augmented_sample) -> None:
    results = rig_results()
    before = copy.deepcopy(results)
    after = ResizeCropFlipRotImage(RIG_CONF, training=False)(results)
    assert check_augmented_sample(before, after, radius=3) >= 1


def test_filter_invisible_drops_covered_boxes(rig_results) -> None:
    results = rig_results()
    results["gt_bboxes"][0] = np.array([[10, 10, 60, 50], [20, 20, 30, 30], [50, 40, 90, 80]], np.float32)
    results["gt_labels"][0] = np.array([0, 1, 2])
    results["centers2d"][0] = np.array([[35, 30], [25, 25], [70, 60]], np.float32)
    results["depths"][0] = np.array([5.0, 9.0, 20.0], np.float32)
    conf = dict(RIG_CONF, resize_lim=(1.0, 1.0), final_dim=(96, 160), bot_pct_lim=(0.0, 0.0),
                rot_lim=(0.0, 0.0), rand_flip=False)
    out = ResizeCropFlipRotImage(conf, training=True)(results)
    # box 1 lies behind box 0 entirely; the survivors come farthest first (upstream)
    assert out["gt_labels"][0].tolist() == [2, 0]
    np.testing.assert_allclose(out["depths"][0], [20.0, 5.0])
    np.testing.assert_allclose(out["centers2d"][0], [[70, 60], [35, 30]])


def test_without_2d_the_annotations_are_removed(rig_results) -> None:
    out = ResizeCropFlipRotImage(RIG_CONF, with_2d=False)(rig_results())
    assert not {"gt_bboxes", "gt_labels", "centers2d", "depths"} & set(out)
    results = rig_results()
    del results["gt_bboxes"]
    with pytest.raises(KeyError, match="with_bbox=True"):
        ResizeCropFlipRotImage(RIG_CONF)(results)


def test_test_mode_size_is_exact_for_fractional_ratios() -> None:
    conf = dict(RIG_CONF, H=225, W=400, final_dim=(96, 176), bot_pct_lim=(0.0, 0.0))
    params = ResizeCropFlipRotImage(conf, training=False).sample_augmentation()
    assert params.resize_dims == (176, 99) and params.crop == (0, 3, 176, 99)


def test_rejects_source_size_mismatch_and_bad_conf(rig_results) -> None:
    with pytest.raises(ValueError, match="H=900"):
        ResizeCropFlipRotImage(UPSTREAM_CONF)(rig_results())
    with pytest.raises(KeyError, match="final_dims"):
        ResizeCropFlipRotImage(dict(RIG_CONF, final_dims=(1, 1)))
    with pytest.raises(TypeError):
        ResizeCropFlipRotImage(RIG_CONF, trainig=True)


def test_rejects_normalised_images(rig_results) -> None:
    results = rig_results()
    results["img"] = [img - 128.0 for img in results["img"]]
    with pytest.raises(ValueError, match="NormalizeMultiviewImage"):
        ResizeCropFlipRotImage(RIG_CONF)(results)


def _world_results(dataset, index: int) -> dict:
    """Loaded world sample whose 3D boxes are all boxes of the info (so every 2D one has its box)."""
    results = dataset.get_data_info(index)
    info = dataset.infos[index]
    results["gt_bboxes_3d"] = np.c_[info["gt_boxes"], np.nan_to_num(info["gt_velocity"])].astype(np.float32)
    results["gt_labels_3d"] = np.zeros(len(info["gt_boxes"]), dtype=np.int64)
    results.pop("gt_names")
    results = LoadMultiViewImageFromFiles(to_float32=True)(results)
    return LoadAnnotations3D(with_bbox=True, with_label=True, with_bbox_depth=True)(results)


WORLD_CONF = dict(resize_lim=(0.85, 1.15), final_dim=(192, 352), bot_pct_lim=(0.0, 0.1),
                  rot_lim=(-10.0, 10.0), H=225, W=400, rand_flip=True)
WORLD_DEMO_CONF = dict(resize_lim=(0.42, 0.48), final_dim=(96, 176), bot_pct_lim=(0.0, 0.0),
                       rot_lim=(0.0, 0.0), H=225, W=400, rand_flip=True)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_world_train_aug_keeps_projection_and_colours(
    seed: int, world_dataset, check_augmented_sample
) -> None:
    checked = 0
    for index in (0, 5):
        results = _world_results(world_dataset, index)
        before = copy.deepcopy(results)
        torch.manual_seed(seed)
        after = ResizeCropFlipRotImage(WORLD_CONF, filter_invisible=False, training=True)(results)
        checked += check_augmented_sample(before, after, radius=3)
    assert checked >= 3


@pytest.mark.parametrize("training", [True, False])
def test_world_demo_resolution(training: bool, world_dataset, check_augmented_sample) -> None:
    results = _world_results(world_dataset, 2)
    before = copy.deepcopy(results)
    torch.manual_seed(7)
    after = ResizeCropFlipRotImage(WORLD_DEMO_CONF, filter_invisible=False, training=training)(results)
    assert after["img"][0].shape == (96, 176, 3)
    assert check_augmented_sample(before, after, radius=6) >= 1


def test_world_filter_invisible_keeps_a_consistent_subset(world_dataset, check_augmented_sample) -> None:
    results = _world_results(world_dataset, 0)
    before = copy.deepcopy(results)
    torch.manual_seed(3)
    after = ResizeCropFlipRotImage(WORLD_CONF, training=True)(results)
    check_augmented_sample(before, after, radius=3, boxes_2d_exact=False)
