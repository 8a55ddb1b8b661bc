"""Compose, and the StreamPETR / RayDN train and test pipelines end to end on the generated world."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.pipelines.compose import Compose
from projects.mmdet3d_plugin.registry import TRANSFORMS

CLASS_NAMES = list(NUSCENES_CLASSES)
PCR = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
IMG_NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
COLLECT_KEYS = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "img_timestamp", "ego_pose",
                "ego_pose_inv"]
IDA = dict(resize_lim=(0.38, 0.55), final_dim=(96, 176), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
           H=225, W=400, rand_flip=True)
META = ("filename", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip", "box_mode_3d",
        "box_type_3d", "img_norm_cfg", "scene_token")
TRAIN_PIPELINE = [
    dict(type="LoadMultiViewImageFromFiles", to_float32=True),
    dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_bbox=True,
         with_label=True, with_bbox_depth=True),
    dict(type="ObjectRangeFilter", point_cloud_range=PCR),
    dict(type="ObjectNameFilter", classes=CLASS_NAMES),
    dict(type="ResizeCropFlipRotImage", data_aug_conf=IDA, training=True),
    dict(type="GlobalRotScaleTransImage", rot_range=[-0.3925, 0.3925], translation_std=[0, 0, 0],
         scale_ratio_range=[0.95, 1.05], reverse_angle=True, training=True),
    dict(type="NormalizeMultiviewImage", **IMG_NORM),
    dict(type="PadMultiViewImage", size_divisor=32),
    dict(type="PETRFormatBundle3D", class_names=CLASS_NAMES, collect_keys=COLLECT_KEYS + ["prev_exists"]),
    dict(type="Collect3D", keys=["gt_bboxes_3d", "gt_labels_3d", "img", "gt_bboxes", "gt_labels", "centers2d",
                                 "depths", "prev_exists"] + COLLECT_KEYS,
         meta_keys=META + ("gt_bboxes_3d", "gt_labels_3d")),
]
TEST_PIPELINE = [
    dict(type="LoadMultiViewImageFromFiles", to_float32=True),
    dict(type="ResizeCropFlipRotImage", data_aug_conf=IDA, training=False),
    dict(type="NormalizeMultiviewImage", **IMG_NORM),
    dict(type="PadMultiViewImage", size_divisor=32),
    dict(type="MultiScaleFlipAug3D", img_scale=(1333, 800), pts_scale_ratio=1, flip=False, transforms=[
        dict(type="PETRFormatBundle3D", collect_keys=COLLECT_KEYS, class_names=CLASS_NAMES, with_label=False),
        dict(type="Collect3D", keys=["img"] + COLLECT_KEYS, meta_keys=META),
    ]),
]
CONTRACT = {
    "img", "lidar2img", "intrinsics", "extrinsics", "ego_pose", "ego_pose_inv", "timestamp",
    "prev_exists", "img_shape", "pad_shape", "sample_idx", "scene_token", "img_timestamp",
}
GT = {"gt_bboxes_3d", "gt_labels_3d", "gt_bboxes", "gt_labels", "centers2d", "depths"}


def test_compose_builds_configs_and_keeps_callables() -> None:
    marker = []
    pipeline = Compose([dict(type="PadMultiViewImage", size_divisor=4), lambda r: marker.append(1) or r])
    out = pipeline(dict(img=[np.zeros((5, 5, 3))]))
    assert out["pad_shape"] == (8, 8) and marker == [1]
    assert Compose([lambda r: None, lambda r: marker.append(2)])({}) is None and marker == [1]
    assert TRANSFORMS.get("Compose") is Compose


def test_compose_rejects_typos_and_non_steps() -> None:
    with pytest.raises(TypeError, match="size_divisr"):
        Compose([dict(type="PadMultiViewImage", size_divisr=32)])
    with pytest.raises(KeyError):
        Compose([dict(type="PadMultiViewImages", size_divisor=32)])
    with pytest.raises(TypeError, match="step 0"):
        Compose([3])


def test_train_pipeline_on_the_world(world_dataset) -> None:
    pipeline = Compose(TRAIN_PIPELINE)
    torch.manual_seed(0)
    for index in range(3):
        sample = pipeline(world_dataset.get_data_info(index))
        assert set(sample) == CONTRACT | GT
        assert sample["img"].shape == (6, 3, 96, 192) and sample["img"].dtype == torch.float32
        assert sample["img_shape"] == (96, 176) and sample["pad_shape"] == (96, 192)
        assert sample["timestamp"].dtype == torch.float64 and sample["img_timestamp"].dtype == torch.float64
        assert sample["prev_exists"].item() == (index > 0)
        assert sample["gt_bboxes_3d"].shape[1] == 9 and len(sample["gt_bboxes"]) == 6
        assert abs(sample["img"].mean().item()) < 3.0


def test_test_pipeline_and_collate(world_dataset) -> None:
    from projects.mmdet3d_plugin.datasets.collate import collate_samples

    pipeline = Compose(TEST_PIPELINE)
    samples = [pipeline(world_dataset.get_data_info(i)) for i in (0, 1)]
    assert set(samples[0]) == CONTRACT
    first = world_dataset.get_data_info(0)
    expected = np.asarray(first["intrinsics"][0])[:3, :3].copy()
    expected[:2] *= 0.44
    expected[1, 2] -= 99 - 96  # bottom crop of the 0.44 x 225 = 99 rows resized image
    np.testing.assert_allclose(samples[0]["intrinsics"][0, :3, :3].numpy(), expected, rtol=1e-5)
    batch = collate_samples(samples)
    assert batch["img"].shape == (2, 6, 3, 96, 192) and batch["timestamp"].dtype == torch.float64
    assert batch["prev_exists"].tolist() == [False, True]


def test_dataset_runs_the_pipeline(world_dataset, synthetic_infos, synthetic_world) -> None:
    from projects.mmdet3d_plugin.registry import DATASETS

    dataset = DATASETS.build(dict(type="CustomNuScenesDataset", ann_file=str(synthetic_infos["train"]),
                                  data_root=str(synthetic_world), pipeline=TRAIN_PIPELINE))
    sample = dataset[len(dataset) - 1]
    assert set(sample) == CONTRACT | GT


def test_repository_streampetr_config_pipelines_run(world_dataset) -> None:
    from mmengine import Config

    cfg = Config.fromfile("projects/configs/StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py")
    for name in ("train_pipeline", "test_pipeline"):
        steps = [dict(step) for step in cfg[name]]
        for step in steps:
            if step["type"] == "ResizeCropFlipRotImage":
                step["data_aug_conf"] = dict(step["data_aug_conf"], H=225, W=400, final_dim=(96, 176))
        sample = Compose(steps)(world_dataset.get_data_info(0))
        expected = CONTRACT | GT if name == "train_pipeline" else CONTRACT
        assert set(sample) == expected
        assert sample["img"].shape == (6, 3, 96, 192)
