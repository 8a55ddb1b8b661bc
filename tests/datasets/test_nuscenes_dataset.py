"""CustomNuScenesDataset on the generated world: results dict, segments, filters, compatibility."""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.box_layout import BOX_DIM, CAMERA_NAMES, NUSCENES_CLASSES, VX, VY
from projects.mmdet3d_plugin.datasets.camera_boxes import INFO_2D_CATEGORIES
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.datasets.labelled_subset import labelled_mask
from projects.mmdet3d_plugin.datasets.nuscenes_dataset import CustomNuScenesDataset, segment_flags
from projects.mmdet3d_plugin.registry import DATASETS

MODALITY = dict(use_lidar=False, use_camera=True, use_radar=False, use_map=False, use_external=True)


@pytest.fixture(scope="module")
def dataset(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> CustomNuScenesDataset:
    return CustomNuScenesDataset(
        ann_file=synthetic_infos["train"], data_root=synthetic_world, modality=MODALITY, version="v1.0-mini"
    )


def raw_infos(path: Path) -> list[dict]:
    with open(path, "rb") as file:
        return pickle.load(file)["infos"]


def test_get_data_info_shapes_and_geometry(dataset: CustomNuScenesDataset, synthetic_infos: dict[str, Path]) -> None:
    assert len(dataset) == 8 and dataset.sample_tokens == [i["token"] for i in raw_infos(synthetic_infos["train"])]
    results = dataset.get_data_info(1)
    info = dataset.infos[1]
    assert results["sample_idx"] == info["token"] and results["scene_token"] == info["scene_token"]
    assert results["frame_idx"] == 1 and results["prev_exists"] is True
    assert isinstance(results["timestamp"], np.float64) and results["timestamp"] == info["timestamp"] / 1e6
    assert results["cam_names"] == list(CAMERA_NAMES)
    assert len(results["img_filename"]) == 6 and all(os.path.isfile(p) for p in results["img_filename"])
    for key in ("lidar2img", "intrinsics", "extrinsics"):
        assert len(results[key]) == 6 and all(m.shape == (4, 4) for m in results[key])
    for k, e, l2i in zip(results["intrinsics"], results["extrinsics"], results["lidar2img"]):
        np.testing.assert_allclose(k @ e, l2i)
    np.testing.assert_allclose(results["ego_pose"] @ results["ego_pose_inv"], np.eye(4), atol=1e-9)
    # ego_pose maps the LiDAR origin to the global LiDAR position: ego2global @ lidar2ego translation
    lidar_origin = results["ego_pose"][:3, 3]
    assert np.linalg.norm(lidar_origin[:2] - np.asarray(info["ego2global_translation"])[:2]) < 3.0


def test_annotations_layout_classes_and_filters(dataset: CustomNuScenesDataset) -> None:
    info = dataset.infos[2]
    results = dataset.get_data_info(2)
    boxes, labels = results["gt_bboxes_3d"], results["gt_labels_3d"]
    keep = np.isin(info["gt_names"], NUSCENES_CLASSES) & (info["num_lidar_pts"] > 0)
    assert boxes.shape == (keep.sum(), BOX_DIM) and boxes.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_allclose(boxes[:, :7], info["gt_boxes"][keep], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(boxes[:, [VX, VY]], np.nan_to_num(info["gt_velocity"][keep]), atol=1e-5)
    assert [NUSCENES_CLASSES[i] for i in labels] == results["gt_names"].tolist()
    for key in ("gt_bboxes", "gt_labels", "centers2d", "depths"):
        assert len(results[key]) == 6
    for cam in range(6):
        names = [INFO_2D_CATEGORIES[i] for i in info["labels2d"][cam]]
        assert [NUSCENES_CLASSES[i] for i in results["gt_labels"][cam]] == names
        assert results["gt_bboxes"][cam].shape == (len(names), 4)


def test_class_subset_remaps_labels_and_valid_flag(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    subset = ("pedestrian", "car")
    data = CustomNuScenesDataset(
        ann_file=synthetic_infos["train"], data_root=synthetic_world, classes=subset, use_valid_flag=True
    )
    info = data.infos[0]
    results = data.get_data_info(0)
    keep = np.isin(info["gt_names"], subset) & info["valid_flag"]
    assert results["gt_names"].tolist() == info["gt_names"][keep].tolist()
    assert [subset[i] for i in results["gt_labels_3d"]] == results["gt_names"].tolist()
    for cam in range(6):
        expected = [INFO_2D_CATEGORIES[i] for i in info["labels2d"][cam] if INFO_2D_CATEGORIES[i] in subset]
        assert [subset[i] for i in results["gt_labels"][cam]] == expected
        assert len(results["centers2d"][cam]) == len(expected)


@pytest.mark.parametrize("use_valid_flag, expected", [(True, [0, 2]), (False, [2])])
def test_use_valid_flag_keeps_boxes_with_lidar_or_radar_points(
    use_valid_flag: bool, expected: list[int], synthetic_world: Path, synthetic_infos: dict[str, Path],
    tmp_path: Path
) -> None:
    # mmdet3d's NuScenesDataset.get_ann_info: valid_flag (num_lidar_pts + num_radar_pts > 0, set
    # by the converter) when use_valid_flag, else num_lidar_pts > 0. Box 0 has radar points only,
    # box 1 no point at all, box 2 LiDAR points only; the others get no point.
    infos = raw_infos(synthetic_infos["train"])[:1]
    info = infos[0]
    m = len(info["gt_names"])
    assert m >= 3 and set(info["gt_names"][:3]) <= set(NUSCENES_CLASSES)
    info["num_lidar_pts"] = np.r_[0, 0, 5, np.zeros(m - 3)].astype(np.int64)
    info["num_radar_pts"] = np.r_[3, 0, 0, np.zeros(m - 3)].astype(np.int64)
    info["valid_flag"] = np.r_[True, False, True, np.zeros(m - 3, dtype=bool)]
    ann_file = tmp_path / "infos.pkl"
    with open(ann_file, "wb") as file:
        pickle.dump({"infos": infos, "metadata": {"version": "v1.0-mini"}}, file)
    data = CustomNuScenesDataset(ann_file=ann_file, data_root=synthetic_world, use_valid_flag=use_valid_flag)
    boxes = data.get_ann_info(0)["gt_bboxes_3d"]
    np.testing.assert_allclose(boxes[:, :7], info["gt_boxes"][expected], rtol=1e-6, atol=1e-5)


def test_segments_and_prev_exists(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    whole = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world)
    assert whole.flag.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [whole.get_data_info(i)["prev_exists"] for i in range(8)] == [False, True, True, True] * 2
    split = CustomNuScenesDataset(
        ann_file=synthetic_infos["train"], data_root=synthetic_world, seq_mode=True, seq_split_num=2
    )
    assert split.flag.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert split.scene_ids.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [split.get_data_info(i)["prev_exists"] for i in range(8)] == [False, True] * 4
    assert segment_flags(np.array([0, 0, 0, 0, 0, 1, 1]), 2).tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert segment_flags(np.array([0, 0, 1]), "all").tolist() == [0, 1, 2]


def test_test_mode_has_no_annotations(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    data = CustomNuScenesDataset(ann_file=synthetic_infos["val"], data_root=synthetic_world, test_mode=True)
    results = data.get_data_info(0)
    assert "gt_bboxes_3d" not in results and "gt_bboxes" not in results and results["prev_exists"] is False


def test_streampetr_info_file_with_extra_keys_and_cwd_relative_paths(
    synthetic_world: Path, synthetic_infos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    infos = raw_infos(synthetic_infos["val"])[::-1]  # upstream files are not guaranteed to be ordered
    root = f"./{synthetic_world.name}/"
    for info in infos:
        info["sweeps"] = []
        info["bboxes3d_cams"] = [np.zeros((len(b), 7), dtype=np.float32) for b in info["bboxes2d"]]
        info["visibilities"] = [["4"] * len(b) for b in info["bboxes2d"]]
        info["bboxes_ignore"] = [np.zeros((0, 4), dtype=np.float32)] * 6
        info["lidar_path"] = root + info["lidar_path"]
        for cam in info["cams"].values():
            cam["data_path"] = root + cam["data_path"]
    ann_file = tmp_path / "nuscenes2d_temporal_infos_val.pkl"
    with open(ann_file, "wb") as file:
        pickle.dump({"infos": infos, "metadata": {"version": "v1.0-mini"}}, file)
    monkeypatch.chdir(synthetic_world.parent)
    data = DATASETS.build(
        dict(type="CustomNuScenesDataset", ann_file=str(ann_file), data_root=root, modality=MODALITY, queue_length=1,
             collect_keys=["lidar2img", "timestamp"], box_type_3d="LiDAR", use_valid_flag=False)
    )
    assert [info["frame_idx"] for info in data.infos] == [0, 1, 2, 3]
    results = data.get_data_info(0)
    assert all(os.path.isfile(p) for p in results["img_filename"])
    assert results["img_filename"][0].startswith(synthetic_world.name)


def test_bad_configs_raise(synthetic_world: Path, synthetic_infos: dict[str, Path], tmp_path: Path) -> None:
    ann_file = synthetic_infos["train"]
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        CustomNuScenesDataset(ann_file=tmp_path / "missing.pkl")
    with pytest.raises(ValueError, match="v1.0-trainval"):
        CustomNuScenesDataset(ann_file=ann_file, version="v1.0-trainval")
    with pytest.raises(ValueError, match="queue_length"):
        CustomNuScenesDataset(ann_file=ann_file, queue_length=8)
    with pytest.raises(ValueError, match="LiDAR"):
        CustomNuScenesDataset(ann_file=ann_file, box_type_3d="Camera")
    with pytest.raises(ValueError, match="use_camera"):
        CustomNuScenesDataset(ann_file=ann_file, modality=dict(use_camera=False))
    with pytest.raises(ValueError, match="seq_split_num"):
        CustomNuScenesDataset(ann_file=ann_file, seq_mode=True, seq_split_num=0)
    with pytest.raises(TypeError, match="seq_splitnum"):
        CustomNuScenesDataset(ann_file=ann_file, seq_splitnum=2)


def test_collect_keys_are_contract_keys_every_sample_carries(synthetic_world: Path,
                                                             synthetic_infos: dict[str, Path]) -> None:
    ann_file = synthetic_infos["train"]
    with pytest.raises(KeyError, match=r"'lidar2imgs'.*close matches: \['lidar2img'\].*allowed: .*'img_metas'"):
        CustomNuScenesDataset(ann_file=ann_file, collect_keys=["img", "lidar2imgs"])
    with pytest.raises(TypeError, match="not the string"):
        CustomNuScenesDataset(ann_file=ann_file, collect_keys="img")
    loads = [dict(type="LoadMultiViewImageFromFiles", to_float32=True),
             dict(type="PadMultiViewImage", size_divisor=32), dict(type="Collect3D", keys=["img"])]
    data = CustomNuScenesDataset(ann_file=ann_file, data_root=synthetic_world, pipeline=loads,
                                 collect_keys=["img", "img_metas", "lidar2img"])
    assert data.collect_keys == ("img", "img_shape", "pad_shape", "sample_idx", "scene_token", "lidar2img")
    with pytest.raises(KeyError, match=r"CustomNuScenesDataset collect_keys needs batch keys \['lidar2img'\]"):
        data[0]


def test_pipeline_and_collate_give_the_contract_batch(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    keys = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "img_timestamp", "ego_pose", "ego_pose_inv"]
    pipeline = [
        dict(type="LoadMultiViewImageFromFiles", to_float32=True),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_bbox=True, with_label=True,
             with_bbox_depth=True),
        dict(type="PadMultiViewImage", size_divisor=32),
        dict(type="PETRFormatBundle3D", class_names=NUSCENES_CLASSES, collect_keys=keys),
        dict(type="Collect3D", keys=["img", "gt_bboxes_3d", "gt_labels_3d", "gt_bboxes", "gt_labels", "centers2d",
                                     "depths"] + keys),
    ]
    data = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world, pipeline=pipeline)
    batch = collate_samples([data[3], data[4]])
    assert batch["img"].shape == (2, 6, 3, 256, 416)
    assert batch["lidar2img"].shape == (2, 6, 4, 4) and batch["lidar2img"].dtype == torch.float32
    assert batch["timestamp"].dtype == torch.float64 and batch["prev_exists"].tolist() == [True, False]
    assert batch["gt_bboxes_3d"][0].shape[1] == BOX_DIM and len(batch["gt_bboxes"][1]) == 6
    assert batch["sample_idx"] == [data.infos[3]["token"], data.infos[4]["token"]]


def test_filter_empty_gt_drops_frames_but_keeps_order(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    infos = raw_infos(synthetic_infos["train"])

    def frames_with(name: str) -> list[bool]:
        return [bool((np.isin(i["gt_names"], [name]) & (i["num_lidar_pts"] > 0)).any()) for i in infos]

    # A class seen in some frames but not all, so that filtering drops some frames.
    name = next(n for n in NUSCENES_CLASSES if 0 < sum(frames_with(n)) < len(infos))
    data = CustomNuScenesDataset(
        ann_file=synthetic_infos["train"], data_root=synthetic_world, classes=(name,), filter_empty_gt=True
    )
    assert data.sample_tokens == [i["token"] for i, keep in zip(infos, frames_with(name)) if keep]
    assert all(len(data.get_data_info(k)["gt_labels_3d"]) > 0 for k in range(len(data)))
    kept_in_test_mode = CustomNuScenesDataset(
        ann_file=synthetic_infos["train"], classes=("pedestrian",), filter_empty_gt=True, test_mode=True
    )
    assert len(kept_in_test_mode) == len(infos)


# ---------------------------------------------------------------- label-scarce training
GT_KEYS_2D = ("gt_bboxes", "gt_labels", "centers2d", "depths")


def mixed_seed(tokens: list[str]) -> int:
    """A seed whose 50 % subset of the tokens holds labelled and unlabelled frames."""
    return next(seed for seed in range(100) if 0 < labelled_mask(tokens, 0.5, seed).sum() < len(tokens))


def test_unlabelled_frames_carry_empty_gt_and_the_flag(
    synthetic_world: Path, synthetic_infos: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    full = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world)
    seed = mixed_seed(full.sample_tokens)
    with caplog.at_level(logging.INFO):
        scarce = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world,
                                       labelled_fraction=0.5, labelled_seed=seed)
    assert np.array_equal(scarce.labelled, labelled_mask(full.sample_tokens, 0.5, seed))
    assert f"{scarce.num_labelled} of 8 training frames labelled" in caplog.text
    assert full.labelled.all() and full.num_labelled == 8
    for index in range(len(full)):
        expected, results = full.get_data_info(index), scarce.get_data_info(index)
        assert "gt_labelled" not in expected and results["gt_labelled"] is bool(scarce.labelled[index])
        for key in ("gt_bboxes_3d", "gt_labels_3d", "gt_names"):
            rows = len(expected[key]) if scarce.labelled[index] else 0
            assert results[key].shape == (rows,) + expected[key].shape[1:] and results[key].dtype == expected[key].dtype
            np.testing.assert_array_equal(results[key], expected[key][:rows])
        for key in GT_KEYS_2D:
            assert len(results[key]) == 6
            for got, want in zip(results[key], expected[key]):
                np.testing.assert_array_equal(got, want if scarce.labelled[index] else want[:0])
                assert got.shape[1:] == want.shape[1:] and got.dtype == want.dtype


def test_label_scarce_pipeline_and_collate(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    keys = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "img_timestamp", "ego_pose", "ego_pose_inv"]
    aug = dict(resize_lim=(0.4, 0.4), final_dim=(96, 160), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
               H=225, W=400, rand_flip=False)
    pipeline = [  # a config's pipeline, unchanged: its Collect3D does not list gt_labelled
        dict(type="LoadMultiViewImageFromFiles", to_float32=True),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True, with_bbox=True, with_label=True,
             with_bbox_depth=True),
        dict(type="ObjectRangeFilter", point_cloud_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]),
        dict(type="ObjectNameFilter", classes=NUSCENES_CLASSES),
        dict(type="ResizeCropFlipRotImage", data_aug_conf=aug, training=False),
        dict(type="PadMultiViewImage", size_divisor=32),
        dict(type="PETRFormatBundle3D", class_names=NUSCENES_CLASSES, collect_keys=keys),
        dict(type="Collect3D", keys=["img", "gt_bboxes_3d", "gt_labels_3d"] + list(GT_KEYS_2D) + keys),
    ]
    full = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world, pipeline=pipeline)
    seed = mixed_seed(full.sample_tokens)
    scarce = CustomNuScenesDataset(ann_file=synthetic_infos["train"], data_root=synthetic_world, pipeline=pipeline,
                                   labelled_fraction=0.5, labelled_seed=seed)
    on, off = int(np.flatnonzero(scarce.labelled)[0]), int(np.flatnonzero(~scarce.labelled)[0])
    batch = collate_samples([scarce[on], scarce[off]])
    assert batch["gt_labelled"].dtype == torch.bool and batch["gt_labelled"].tolist() == [True, False]
    assert "gt_labelled" not in full[on]
    expected = full[on]
    assert torch.equal(batch["gt_bboxes_3d"][0], expected["gt_bboxes_3d"]) and len(expected["gt_bboxes_3d"]) > 0
    assert batch["gt_bboxes_3d"][1].shape == (0, BOX_DIM) and batch["gt_labels_3d"][1].dtype == torch.int64
    for key, width in zip(GT_KEYS_2D, (4, None, 2, None)):
        assert all(torch.equal(a, b) for a, b in zip(batch[key][0], expected[key]))
        assert [t.shape for t in batch[key][1]] == [(0, width) if width else (0,)] * 6


def test_labelled_fraction_is_a_training_option(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="test_mode dataset"):
        CustomNuScenesDataset(ann_file=synthetic_infos["val"], test_mode=True, labelled_fraction=0.25)
    with pytest.raises(ValueError, match="labelled_fraction must be a number in \\(0, 1\\]"):
        CustomNuScenesDataset(ann_file=synthetic_infos["train"], labelled_fraction=0.0)
    test_data = CustomNuScenesDataset(ann_file=synthetic_infos["val"], data_root=synthetic_world, test_mode=True)
    assert "gt_labelled" not in test_data.get_data_info(0)
