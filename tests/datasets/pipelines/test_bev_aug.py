"""GlobalRotScaleTransImage: boxes, matrices and ego poses move together."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.datasets.pipelines.bev_aug import (
    GlobalRotScaleTransImage,
    bev_aug_matrix,
    transform_boxes_3d,
)
from projects.mmdet3d_plugin.datasets.pipelines.image_aug import ResizeCropFlipRotImage

UPSTREAM_ARGS = dict(rot_range=[-0.3925, 0.3925], translation_std=[0, 0, 0],
                     scale_ratio_range=[0.95, 1.05], reverse_angle=True, training=True)


def test_box_transform_rotates_scales_and_translates() -> None:
    box = np.array([[10.0, 0.0, 1.0, 4.0, 2.0, 1.5, 0.2, 3.0, 0.0]])
    aug = bev_aug_matrix(np.pi / 2, 2.0, [1.0, 2.0, 3.0])
    out = transform_boxes_3d(box, aug, np.pi / 2, 2.0)[0]
    np.testing.assert_allclose(out[:3], [1.0, 22.0, 5.0], atol=1e-5)
    np.testing.assert_allclose(out[3:6], [8.0, 4.0, 3.0])
    np.testing.assert_allclose(out[6], 0.2 + np.pi / 2, atol=1e-6)
    np.testing.assert_allclose(out[7:], [0.0, 6.0], atol=1e-5)


def test_yaw_is_wrapped() -> None:
    box = np.array([[0, 0, 0, 1, 1, 1, 3.0, 0, 0]], dtype=np.float64)
    out = transform_boxes_3d(box, bev_aug_matrix(0.5, 1.0, [0, 0, 0]), 0.5, 1.0)
    np.testing.assert_allclose(out[0, 6], 3.5 - 2 * np.pi, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ego_pose_and_lidar2img_invariants(seed: int, rig_results) -> None:
    results = rig_results()
    before = copy.deepcopy(results)
    torch.manual_seed(seed)
    args = dict(UPSTREAM_ARGS, translation_std=[0.5, 0.5, 0.2])
    after = GlobalRotScaleTransImage(**args)(results)
    centres_b = before["gt_bboxes_3d"][:, :3].astype(np.float64)
    centres_a = after["gt_bboxes_3d"][:, :3].astype(np.float64)
    assert not np.allclose(centres_a, centres_b, atol=1e-2)
    hom_b, hom_a = np.c_[centres_b, np.ones(len(centres_b))], np.c_[centres_a, np.ones(len(centres_a))]
    np.testing.assert_allclose(hom_a @ after["ego_pose"].T, hom_b @ before["ego_pose"].T, atol=1e-4)
    np.testing.assert_allclose(after["ego_pose_inv"] @ after["ego_pose"], np.eye(4), atol=1e-9)
    np.testing.assert_allclose(hom_b @ before["ego_pose"].T @ after["ego_pose_inv"].T, hom_a, atol=1e-4)
    for cam in range(2):
        np.testing.assert_allclose(
            hom_a @ after["lidar2img"][cam].T, hom_b @ before["lidar2img"][cam].T, atol=1e-3
        )
        np.testing.assert_array_equal(after["extrinsics"][cam], before["extrinsics"][cam])
        np.testing.assert_array_equal(after["intrinsics"][cam], before["intrinsics"][cam])


def test_known_draw_moves_lidar2img_and_poses_but_not_the_rig(rig_results, monkeypatch) -> None:
    # angle pi/2, scale 2, t = (1, 2, 3): p = R^T (q - t) / 2, i.e. A^-1 worked out by hand.
    a_inv = np.array([[0.0, 0.5, 0.0, -1.0], [-0.5, 0.0, 0.0, 0.5], [0.0, 0.0, 0.5, -1.5], [0.0, 0.0, 0.0, 1.0]])
    aug = GlobalRotScaleTransImage(**UPSTREAM_ARGS)
    monkeypatch.setattr(aug, "sample_augmentation", lambda: (np.pi / 2, 2.0, np.array([1.0, 2.0, 3.0])))
    results = rig_results()
    before = copy.deepcopy(results)
    after = aug(results)
    np.testing.assert_allclose(after["ego_pose"], before["ego_pose"] @ a_inv, atol=1e-9)
    np.testing.assert_allclose(after["ego_pose_inv"], np.linalg.inv(a_inv) @ before["ego_pose_inv"], atol=1e-9)
    for cam in range(2):
        np.testing.assert_allclose(after["lidar2img"][cam], before["lidar2img"][cam] @ a_inv, atol=1e-9)
        # upstream GlobalRotScaleTransImage updates lidar2img and the ego poses only
        np.testing.assert_array_equal(after["extrinsics"][cam], before["extrinsics"][cam])
        np.testing.assert_array_equal(after["intrinsics"][cam], before["intrinsics"][cam])


def test_velocity_and_size_follow_the_augmentation(rig_results) -> None:
    results = rig_results()
    before = copy.deepcopy(results)
    torch.manual_seed(4)
    after = GlobalRotScaleTransImage(**UPSTREAM_ARGS)(results)
    aug = after["ego_pose_inv"] @ before["ego_pose"]
    scale = np.cbrt(np.linalg.det(aug[:3, :3]))
    angle = np.arctan2(aug[1, 0], aug[0, 0])
    assert 0.95 <= scale <= 1.05 and abs(angle) <= 0.3925
    b, a = before["gt_bboxes_3d"], after["gt_bboxes_3d"]
    np.testing.assert_allclose(a[:, 3:6], b[:, 3:6] * scale, rtol=1e-5)
    np.testing.assert_allclose(a[:, 7:9], b[:, 7:9] @ aug[:2, :2].T, atol=1e-5)
    yaw_delta = np.angle(np.exp(1j * (a[:, 6] - b[:, 6])))
    np.testing.assert_allclose(yaw_delta, angle, atol=1e-5)


def test_test_mode_is_identity(rig_results) -> None:
    results = rig_results()
    before = copy.deepcopy(results)
    after = GlobalRotScaleTransImage(**dict(UPSTREAM_ARGS, training=False))(results)
    np.testing.assert_array_equal(after["gt_bboxes_3d"], before["gt_bboxes_3d"])
    np.testing.assert_array_equal(after["ego_pose"], before["ego_pose"])


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="translation_std"):
        GlobalRotScaleTransImage(translation_std=[0, 0])
    with pytest.raises(TypeError):
        GlobalRotScaleTransImage(rot_ranges=[0, 1])


WORLD_CONF = dict(resize_lim=(0.85, 1.15), final_dim=(192, 352), bot_pct_lim=(0.0, 0.1),
                  rot_lim=(-10.0, 10.0), H=225, W=400, rand_flip=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_world_image_then_bev_aug(seed: int, world_dataset, check_augmented_sample) -> None:
    from projects.mmdet3d_plugin.datasets.pipelines.loading import (
        LoadAnnotations3D,
        LoadMultiViewImageFromFiles,
    )

    results = world_dataset.get_data_info(1)
    info = world_dataset.infos[1]
    results["gt_bboxes_3d"] = np.c_[info["gt_boxes"], np.nan_to_num(info["gt_velocity"])]
    results["gt_labels_3d"] = np.zeros(len(info["gt_boxes"]), dtype=np.int64)
    results.pop("gt_names")
    results = LoadMultiViewImageFromFiles(to_float32=True)(results)
    results = LoadAnnotations3D(with_bbox=True, with_label=True, with_bbox_depth=True)(results)
    before = copy.deepcopy(results)
    torch.manual_seed(seed)
    results = ResizeCropFlipRotImage(WORLD_CONF, filter_invisible=False)(results)
    after = GlobalRotScaleTransImage(**dict(UPSTREAM_ARGS, translation_std=[0.3, 0.3, 0.1]))(results)
    assert check_augmented_sample(before, after, radius=3) >= 1
    hom_b = np.c_[before["gt_bboxes_3d"][:, :3], np.ones(len(info["gt_boxes"]))]
    hom_a = np.c_[after["gt_bboxes_3d"][:, :3], np.ones(len(info["gt_boxes"]))]
    np.testing.assert_allclose(hom_a @ after["ego_pose"].T, hom_b @ before["ego_pose"].T, atol=2e-3)
