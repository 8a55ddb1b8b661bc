"""PETRFormatBundle3D + Collect3D produce the sample dict of docs/data_contract.md."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.pipelines.formatting import Collect3D, PETRFormatBundle3D
from projects.mmdet3d_plugin.datasets.pipelines.pad import PadMultiViewImage

COLLECT_KEYS = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "ego_pose", "ego_pose_inv"]
TRAIN_KEYS = ["gt_bboxes_3d", "gt_labels_3d", "img", "gt_bboxes", "gt_labels", "centers2d", "depths",
              "prev_exists"] + COLLECT_KEYS
UPSTREAM_META = ("filename", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip", "box_mode_3d",
                 "box_type_3d", "img_norm_cfg", "scene_token", "gt_bboxes_3d", "gt_labels_3d")
CONTRACT = {
    "img", "lidar2img", "intrinsics", "extrinsics", "ego_pose", "ego_pose_inv", "timestamp",
    "prev_exists", "img_shape", "pad_shape", "sample_idx", "scene_token", "gt_bboxes_3d",
    "gt_labels_3d", "gt_bboxes", "gt_labels", "centers2d", "depths",
}


def _format(results: dict, keys: list[str], with_label: bool = True, collect_keys=None) -> dict:
    results = PadMultiViewImage(size_divisor=32)(results)
    collect_keys = COLLECT_KEYS + ["prev_exists"] if collect_keys is None else collect_keys
    results = PETRFormatBundle3D(class_names=NUSCENES_CLASSES, collect_keys=collect_keys,
                                 with_label=with_label)(results)
    return Collect3D(keys=keys, meta_keys=UPSTREAM_META)(results)


def test_train_sample_matches_the_contract(rig_results) -> None:
    sample = _format(rig_results(), TRAIN_KEYS)
    assert set(sample) == CONTRACT
    assert sample["img"].dtype == torch.float32 and sample["img"].shape == (2, 3, 96, 160)
    for key in ("lidar2img", "intrinsics", "extrinsics"):
        assert sample[key].dtype == torch.float32 and sample[key].shape == (2, 4, 4)
    for key in ("ego_pose", "ego_pose_inv"):
        assert sample[key].dtype == torch.float32 and sample[key].shape == (4, 4)
    assert sample["timestamp"].dtype == torch.float64 and sample["timestamp"].shape == ()
    assert sample["timestamp"].item() == 1531883912.177012
    assert sample["prev_exists"].dtype == torch.bool and sample["prev_exists"].shape == ()
    assert sample["prev_exists"].item() is True
    assert sample["img_shape"] == (96, 160) and sample["pad_shape"] == (96, 160)
    assert sample["sample_idx"] == "token0" and sample["scene_token"] == "scene0"
    assert sample["gt_bboxes_3d"].dtype == torch.float32 and sample["gt_bboxes_3d"].shape == (7, 9)
    assert sample["gt_labels_3d"].dtype == torch.int64 and sample["gt_labels_3d"].shape == (7,)
    for cam in range(2):
        m = len(sample["gt_labels"][cam])
        assert sample["gt_bboxes"][cam].dtype == torch.float32 and sample["gt_bboxes"][cam].shape == (m, 4)
        assert sample["gt_labels"][cam].dtype == torch.int64
        assert sample["centers2d"][cam].dtype == torch.float32 and sample["centers2d"][cam].shape == (m, 2)
        assert sample["depths"][cam].dtype == torch.float32 and sample["depths"][cam].shape == (m,)


def test_padding_changes_pad_shape_only(rig_results) -> None:
    results = rig_results()
    results["img"] = [img[:90, :150] for img in results["img"]]
    sample = _format(results, TRAIN_KEYS)
    assert sample["img_shape"] == (90, 150) and sample["pad_shape"] == (96, 160)
    assert tuple(sample["img"].shape[-2:]) == sample["pad_shape"]


def test_test_sample_and_prev_exists_default(rig_results) -> None:
    results = rig_results()
    del results["prev_exists"]
    for key in ("gt_bboxes_3d", "gt_labels_3d", "gt_bboxes", "gt_labels", "centers2d", "depths"):
        del results[key]
    sample = _format(results, ["img"] + COLLECT_KEYS, with_label=False, collect_keys=COLLECT_KEYS)
    assert set(sample) == CONTRACT - {"gt_bboxes_3d", "gt_labels_3d", "gt_bboxes", "gt_labels",
                                      "centers2d", "depths"}
    assert sample["prev_exists"].dtype == torch.bool and sample["prev_exists"].item() is False


def test_img_timestamp_is_float64(rig_results) -> None:
    results = rig_results()
    results["img_timestamp"] = [1531883912.177012 + 0.001 * i for i in range(2)]
    sample = _format(results, TRAIN_KEYS + ["img_timestamp"], collect_keys=COLLECT_KEYS + ["img_timestamp"])
    assert sample["img_timestamp"].dtype == torch.float64 and sample["img_timestamp"].shape == (2,)


def test_labels_must_index_class_names(rig_results) -> None:
    results = rig_results()
    results["gt_labels_3d"][0] = -1
    with pytest.raises(ValueError, match="ObjectNameFilter"):
        _format(results, TRAIN_KEYS)
    results = rig_results()
    results["gt_labels"][0] = np.array([10] * len(results["gt_labels"][0]))
    with pytest.raises(ValueError, match="gt_labels"):
        _format(results, TRAIN_KEYS)


def test_missing_and_unknown_keys_raise(rig_results) -> None:
    with pytest.raises(KeyError, match="ego_pose"):
        _format(rig_results(), TRAIN_KEYS, collect_keys=["ego_pos"])
    with pytest.raises(KeyError, match="gt_bbox_3d"):
        Collect3D(keys=["img"], meta_keys=["gt_bbox_3d"])
    with pytest.raises(KeyError, match="close matches"):
        _format(rig_results(), TRAIN_KEYS + ["depth"])
    with pytest.raises(TypeError):
        PETRFormatBundle3D(class_names=NUSCENES_CLASSES, collect_keys=[], with_labels=True)


def test_gt_labelled_is_collected_when_present_without_being_listed(rig_results) -> None:
    results = rig_results()
    results["gt_labelled"] = False
    sample = _format(results, TRAIN_KEYS)
    assert set(sample) == CONTRACT | {"gt_labelled"}
    assert sample["gt_labelled"].dtype == torch.bool and sample["gt_labelled"].shape == ()
    assert sample["gt_labelled"].item() is False
    assert "gt_labelled" not in _format(rig_results(), TRAIN_KEYS)
    with pytest.raises(KeyError, match="gt_labelled"):  # listing it makes it required
        _format(rig_results(), TRAIN_KEYS + ["gt_labelled"])
