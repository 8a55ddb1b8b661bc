"""collate_samples: stacked fixed-shape tensors, lists for variable-length fields and strings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.datasets.collate import collate_samples


def make_sample(num_boxes: int, boxes_per_cam: tuple[int, ...], prev_exists: bool, token: str) -> dict:
    return {
        "img": torch.zeros(6, 3, 32, 64),
        "lidar2img": torch.eye(4).repeat(6, 1, 1),
        "intrinsics": torch.eye(4).repeat(6, 1, 1),
        "extrinsics": torch.eye(4).repeat(6, 1, 1),
        "ego_pose": torch.eye(4),
        "ego_pose_inv": torch.eye(4),
        "timestamp": 1533201470.448696 + num_boxes,
        "prev_exists": prev_exists,
        "img_shape": (32, 60),
        "pad_shape": (32, 64),
        "sample_idx": token,
        "scene_token": "scene",
        "gt_bboxes_3d": torch.zeros(num_boxes, 9),
        "gt_labels_3d": torch.zeros(num_boxes, dtype=torch.int64),
        "gt_bboxes": [torch.zeros(m, 4) for m in boxes_per_cam],
        "gt_labels": [torch.zeros(m, dtype=torch.int64) for m in boxes_per_cam],
        "centers2d": [torch.zeros(m, 2) for m in boxes_per_cam],
        "depths": [torch.zeros(m) for m in boxes_per_cam],
    }


def test_shapes_dtypes_and_lists() -> None:
    samples = [
        make_sample(3, (1, 0, 2, 0, 0, 1), False, "a"),
        make_sample(3, (0, 0, 0, 0, 0, 0), True, "b"),
    ]
    batch = collate_samples(samples)
    assert batch["img"].shape == (2, 6, 3, 32, 64)
    assert batch["lidar2img"].shape == (2, 6, 4, 4)
    assert batch["intrinsics"].shape == batch["extrinsics"].shape == (2, 6, 4, 4)
    assert batch["ego_pose"].shape == batch["ego_pose_inv"].shape == (2, 4, 4)
    assert batch["timestamp"].dtype == torch.float64 and batch["timestamp"].shape == (2,)
    assert batch["timestamp"][0].item() == 1533201470.448696 + 3
    assert batch["prev_exists"].dtype == torch.bool and batch["prev_exists"].tolist() == [False, True]
    # equal box counts must still give a list, never a stacked tensor
    assert isinstance(batch["gt_bboxes_3d"], list) and batch["gt_bboxes_3d"][0].shape == (3, 9)
    assert isinstance(batch["gt_labels_3d"], list) and len(batch["gt_labels_3d"]) == 2
    assert [t.shape[0] for t in batch["gt_bboxes"][0]] == [1, 0, 2, 0, 0, 1]
    assert batch["centers2d"][0][2].shape == (2, 2)
    assert batch["sample_idx"] == ["a", "b"] and batch["scene_token"] == ["scene", "scene"]
    assert batch["img_shape"] == [(32, 60), (32, 60)]


def test_tensor_timestamps_and_numpy_arrays_are_stacked() -> None:
    samples = [make_sample(1, (0,) * 6, True, "a"), make_sample(2, (0,) * 6, True, "b")]
    for sample in samples:
        sample["timestamp"] = torch.tensor(sample["timestamp"], dtype=torch.float64)
        sample["prev_exists"] = torch.tensor(True)
        sample["img_timestamp"] = np.arange(6, dtype=np.float64)
    batch = collate_samples(samples)
    assert batch["timestamp"].dtype == torch.float64
    assert batch["img_timestamp"].shape == (2, 6) and batch["img_timestamp"].dtype == torch.float64


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        collate_samples([])
    a, b = make_sample(1, (0,) * 6, True, "a"), make_sample(1, (0,) * 6, True, "b")
    b["img"] = torch.zeros(6, 3, 32, 96)
    with pytest.raises(ValueError, match="'img'"):
        collate_samples([a, b])
    del b["img"]
    with pytest.raises(KeyError, match="img"):
        collate_samples([a, b])


def test_gt_labelled_is_stacked_as_bool() -> None:
    samples = [make_sample(2, (0,) * 6, True, "a"), make_sample(0, (0,) * 6, True, "b")]
    samples[0]["gt_labelled"], samples[1]["gt_labelled"] = True, torch.tensor(False)
    batch = collate_samples(samples)
    assert batch["gt_labelled"].dtype == torch.bool and batch["gt_labelled"].tolist() == [True, False]
