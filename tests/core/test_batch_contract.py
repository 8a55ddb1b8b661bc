"""The batch contract (core/batch_contract.py) against the real pipeline on the generated world."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.core import batch_contract as contract
from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.datasets.nuscenes_dataset import CustomNuScenesDataset

COLLECT = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "ego_pose", "ego_pose_inv"]
AUG = dict(resize_lim=(0.4, 0.4), final_dim=(96, 160), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
           H=225, W=400, rand_flip=False)
PIPELINE = [
    dict(type="LoadMultiViewImageFromFiles", to_float32=True),
    dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_bbox=True, with_label=True,
         with_bbox_depth=True),
    dict(type="ObjectNameFilter", classes=NUSCENES_CLASSES),
    dict(type="ResizeCropFlipRotImage", data_aug_conf=AUG, training=False),
    dict(type="LoadLidarDepthMaps", stride=16),
    dict(type="PadMultiViewImage", size_divisor=32),
    dict(type="PETRFormatBundle3D", class_names=NUSCENES_CLASSES, collect_keys=COLLECT),
    dict(type="Collect3D", keys=["img"] + list(contract.keys(
        contract.TARGETS_3D, contract.TARGETS_2D, contract.TARGETS_DEPTH)) + COLLECT),
]


@pytest.fixture(scope="module")
def pipeline_batch(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> dict:
    """Two collated samples of the generated world, labelled and unlabelled."""
    dataset = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world,
                                    pipeline=PIPELINE, labelled_fraction=0.999, labelled_seed=0)
    return collate_samples([dataset[0], dataset[1]])


def test_the_pipeline_produces_exactly_the_sample_groups(pipeline_batch: dict) -> None:
    assert set(pipeline_batch) == set(contract.keys(*contract.SAMPLE_GROUPS))
    contract.check_batch(pipeline_batch)


def test_check_batch_names_a_wrong_dtype_and_shape(pipeline_batch: dict) -> None:
    with pytest.raises(ValueError, match="'timestamp'.*torch.float64"):
        contract.check_batch(dict(pipeline_batch, timestamp=pipeline_batch["timestamp"].float()))
    with pytest.raises(ValueError, match="'gt_bboxes_3d'"):
        contract.check_batch(dict(pipeline_batch, gt_bboxes_3d=[torch.zeros(2, 7)] * 2))
    with pytest.raises(ValueError, match="'depth_maps'.*torch.float32"):
        contract.check_batch(dict(pipeline_batch, depth_maps=pipeline_batch["depth_maps"][:, 0]))
    with pytest.raises(ValueError, match="batch size"):
        contract.check_batch(dict(pipeline_batch, sample_idx=["a"]))


def test_require_names_the_missing_keys_and_the_consumer() -> None:
    with pytest.raises(KeyError, match=r"Petr3D mode='loss' needs batch keys \['ego_pose'\]"):
        contract.require({"img": None, "lidar2img": None}, ("img", "lidar2img", "ego_pose"), "Petr3D mode='loss'")
    contract.require({"img": None}, ("img",), "anyone")


def test_unknown_keys_and_groups_are_named_with_close_matches() -> None:
    with pytest.raises(KeyError, match="lidar2img"):
        contract.spec("lidar2imgs")
    with pytest.raises(ValueError, match="'geometri'"):
        contract.keys("geometri")


def test_geometry_keys_with_and_without_extrinsics() -> None:
    assert contract.geometry_keys(with_extrinsics=True) == (
        "lidar2img", "intrinsics", "extrinsics", "ego_pose", "ego_pose_inv", "timestamp", "prev_exists")
    assert "extrinsics" not in contract.geometry_keys(with_extrinsics=False)
