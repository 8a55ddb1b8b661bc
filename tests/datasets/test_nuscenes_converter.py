"""Temporal info files from the generated world, checked against the nuscenes-devkit itself."""
from __future__ import annotations

import importlib.util
import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.nuscenes import NuScenes
from nuscenes.utils import splits
from nuscenes.utils.geometry_utils import view_points

from projects.mmdet3d_plugin.core.bbox.box_layout import CAMERA_NAMES
from projects.mmdet3d_plugin.datasets.camera_boxes import INFO_2D_CATEGORIES
from projects.mmdet3d_plugin.datasets.geometry import intrinsic_matrix, invert_pose, pose_matrix
from projects.mmdet3d_plugin.datasets.nuscenes_converter import create_nuscenes_infos, scene_infos
from projects.mmdet3d_plugin.paths import REPO_ROOT

VERSION = "v1.0-mini"
INFO_KEYS = (
    "token", "scene_token", "prev", "next", "frame_idx", "timestamp", "lidar_path",
    "lidar2ego_translation", "lidar2ego_rotation", "ego2global_translation", "ego2global_rotation",
    "cams", "gt_boxes", "gt_names", "gt_velocity", "num_lidar_pts", "num_radar_pts", "valid_flag",
    "bboxes2d", "labels2d", "centers2d", "depths",
)
CAM_KEYS = (
    "data_path", "type", "sample_data_token", "sensor2ego_translation", "sensor2ego_rotation",
    "ego2global_translation", "ego2global_rotation", "timestamp", "sensor2lidar_rotation",
    "sensor2lidar_translation", "cam_intrinsic",
)


@pytest.fixture(scope="module")
def infos(synthetic_infos: dict[str, Path]) -> dict[str, list[dict]]:
    result = {}
    for split, path in synthetic_infos.items():
        with open(path, "rb") as file:
            data = pickle.load(file)
        assert data["metadata"] == {"version": VERSION}
        result[split] = data["infos"]
    return result


@pytest.fixture(scope="module")
def nusc(synthetic_world: Path) -> NuScenes:
    return NuScenes(version=VERSION, dataroot=str(synthetic_world), verbose=False)


def lidar2img(cam: dict) -> np.ndarray:
    cam2lidar = pose_matrix(cam["sensor2lidar_rotation"], cam["sensor2lidar_translation"])
    return intrinsic_matrix(cam["cam_intrinsic"]) @ invert_pose(cam2lidar)


def test_files_fields_and_shapes(synthetic_infos: dict[str, Path], infos: dict[str, list[dict]]) -> None:
    assert sorted(synthetic_infos) == ["train", "val"]
    assert synthetic_infos["train"].name == "nuscenes2d_temporal_infos_train.pkl"
    assert not [p for p in synthetic_infos["train"].parent.iterdir() if p.suffix == ".tmp"]
    assert len(infos["train"]) == 8 and len(infos["val"]) == 4
    for info in infos["train"] + infos["val"]:
        assert set(INFO_KEYS) <= set(info)
        assert list(info["cams"]) == list(CAMERA_NAMES)
        for name, cam in info["cams"].items():
            assert set(CAM_KEYS) <= set(cam) and cam["type"] == name
            assert cam["sensor2lidar_rotation"].shape == (3, 3) and cam["cam_intrinsic"].shape == (3, 3)
            assert not Path(cam["data_path"]).is_absolute()
        m = len(info["gt_names"])
        assert info["gt_boxes"].shape == (m, 7) and info["gt_velocity"].shape == (m, 2)
        assert info["num_lidar_pts"].shape == info["num_radar_pts"].shape == info["valid_flag"].shape == (m,)
        np.testing.assert_array_equal(info["valid_flag"], info["num_lidar_pts"] + info["num_radar_pts"] > 0)
        for key in ("bboxes2d", "labels2d", "centers2d", "depths"):
            assert len(info[key]) == 6
        per_camera = zip(info["bboxes2d"], info["labels2d"], info["centers2d"], info["depths"])
        for boxes, labels, centers, depths in per_camera:
            assert boxes.shape == (len(labels), 4) and centers.shape == (len(labels), 2)
            assert depths.shape == labels.shape
            assert labels.dtype == np.int64 and ((labels >= 0) & (labels < len(INFO_2D_CATEGORIES))).all()
            assert (depths > 0).all() and (boxes[:, 2:] - boxes[:, :2] >= 1).all()
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 400).all() and (boxes[:, 3] <= 225).all()


def test_scene_order_prev_next_and_frame_idx(infos: dict[str, list[dict]], nusc: NuScenes) -> None:
    names = {"train": set(splits.mini_train), "val": set(splits.mini_val)}
    for split, split_infos in infos.items():
        scenes = [nusc.get("scene", info["scene_token"])["name"] for info in split_infos]
        assert scenes == sorted(scenes) and set(scenes) <= names[split]
        for prev, info in zip([None] + split_infos[:-1], split_infos):
            if prev is None or prev["scene_token"] != info["scene_token"]:
                assert info["frame_idx"] == 0 and info["prev"] == ""
                assert nusc.get("scene", info["scene_token"])["first_sample_token"] == info["token"]
            else:
                assert info["frame_idx"] == prev["frame_idx"] + 1
                assert info["prev"] == prev["token"] and prev["next"] == info["token"]
                assert info["timestamp"] > prev["timestamp"]
    assert not {i["scene_token"] for i in infos["train"]} & {i["scene_token"] for i in infos["val"]}


def test_lidar_boxes_match_the_devkit(infos: dict[str, list[dict]], nusc: NuScenes) -> None:
    for info in infos["train"][:3]:
        _, boxes, _ = nusc.get_sample_data(nusc.get("sample", info["token"])["data"]["LIDAR_TOP"])
        assert len(boxes) == len(info["gt_boxes"]) > 0
        np.testing.assert_allclose(info["gt_boxes"][:, :3], [b.center for b in boxes], atol=1e-6)
        np.testing.assert_allclose(info["gt_boxes"][:, 3:6], [b.wlh[[1, 0, 2]] for b in boxes], atol=1e-9)
        yaw_diff = info["gt_boxes"][:, 6] - [b.orientation.yaw_pitch_roll[0] for b in boxes]
        np.testing.assert_allclose(np.arctan2(np.sin(yaw_diff), np.cos(yaw_diff)), 0.0, atol=1e-6)
        names = [category_to_detection_name(b.name) or b.name for b in boxes]
        assert info["gt_names"].tolist() == names
        lidar_from_global = np.linalg.inv(
            pose_matrix(info["ego2global_rotation"], info["ego2global_translation"])
            @ pose_matrix(info["lidar2ego_rotation"], info["lidar2ego_translation"])
        )
        for token, velocity in zip(nusc.get("sample", info["token"])["anns"], info["gt_velocity"]):
            expected = nusc.box_velocity(token) * [1, 1, 0]
            np.testing.assert_allclose(velocity, (lidar_from_global[:3, :3] @ expected)[:2], atol=1e-6)


def test_lidar2img_equals_the_devkit_projection_chain(infos: dict[str, list[dict]], nusc: NuScenes) -> None:
    compared = 0
    for info in infos["train"][:4]:
        centers = np.c_[info["gt_boxes"][:, :3], np.ones(len(info["gt_boxes"]))]
        ann_tokens = nusc.get("sample", info["token"])["anns"]
        for cam_name, cam in info["cams"].items():
            _, cam_boxes, intrinsic = nusc.get_sample_data(cam["sample_data_token"])
            for box in cam_boxes:
                devkit_uv = view_points(box.center[:, None], intrinsic, normalize=True)[:2, 0]
                projected = lidar2img(cam) @ centers[ann_tokens.index(box.token)]
                np.testing.assert_allclose(projected[:2] / projected[2], devkit_uv, atol=1e-4)
                np.testing.assert_allclose(projected[2], box.center[2], atol=1e-6)
                compared += 1
    assert compared > 10


def test_2d_centres_are_projections_of_3d_centres(infos: dict[str, list[dict]]) -> None:
    for info in infos["train"][:4]:
        centers = np.c_[info["gt_boxes"][:, :3], np.ones(len(info["gt_boxes"]))]
        for cam, centers2d, depths in zip(info["cams"].values(), info["centers2d"], info["depths"]):
            projected = centers @ lidar2img(cam).T
            uv = projected[:, :2] / projected[:, 2:3]
            for center, depth in zip(centers2d, depths):
                nearest = np.argmin(np.linalg.norm(uv - center, axis=1) + np.abs(projected[:, 2] - depth))
                np.testing.assert_allclose(uv[nearest], center, atol=1e-2)
                np.testing.assert_allclose(projected[nearest, 2], depth, rtol=1e-5)


def test_unannotated_scene_infos_have_no_ground_truth(nusc: NuScenes, synthetic_world: Path) -> None:
    scene_token = nusc.scene[0]["token"]
    test_infos = scene_infos(nusc, synthetic_world, scene_token, with_annotations=False)
    assert [info["frame_idx"] for info in test_infos] == list(range(len(test_infos)))
    assert not {"gt_boxes", "gt_names", "bboxes2d"} & set(test_infos[0])


def test_cli_writes_the_same_infos(synthetic_world: Path, tmp_path: Path, infos: dict[str, list[dict]]) -> None:
    script = REPO_ROOT / "tools" / "create_data_nusc.py"
    spec = importlib.util.spec_from_file_location("create_data_nusc", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--root-path", str(synthetic_world), "--out-dir", str(tmp_path), "--extra-tag", "x", "--version", VERSION]
    assert module.main(args) == 0
    with open(tmp_path / "x_temporal_infos_val.pkl", "rb") as file:
        val = pickle.load(file)["infos"]
    assert [i["token"] for i in val] == [i["token"] for i in infos["val"]]
    np.testing.assert_array_equal(val[0]["gt_boxes"], infos["val"][0]["gt_boxes"])


def tables_only_copy(world: Path, target: Path) -> Path:
    """A data root with copied tables and maps, and the sample files linked one by one."""
    shutil.copytree(world / VERSION, target / VERSION)
    shutil.copytree(world / "maps", target / "maps")
    for path in (world / "samples").rglob("*"):
        if path.is_file():
            link = target / path.relative_to(world)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    return target


def test_missing_inputs_raise_file_not_found(synthetic_world: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data root"):
        create_nuscenes_infos(tmp_path / "nowhere", tmp_path / "out", version=VERSION)
    root = tables_only_copy(synthetic_world, tmp_path / "root")
    with pytest.raises(FileNotFoundError, match="v1.0-trainval"):
        create_nuscenes_infos(root, tmp_path / "out", version="v1.0-trainval")
    image = next((root / "samples" / "CAM_BACK").iterdir())
    image.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(image.name)):
        create_nuscenes_infos(root, tmp_path / "out", version=VERSION)
    (root / VERSION / "sample_data.json").unlink()
    with pytest.raises(FileNotFoundError, match="sample_data.json"):
        create_nuscenes_infos(root, tmp_path / "out", version=VERSION)
    assert not list(tmp_path.rglob("*.tmp"))


def test_empty_split_and_unknown_version_raise_value_error(synthetic_world: Path, tmp_path: Path) -> None:
    root = tables_only_copy(synthetic_world, tmp_path / "root")
    scenes = json.loads((root / VERSION / "scene.json").read_text())
    for k, scene in enumerate(scenes):
        if scene["name"] in splits.mini_val:
            scene["name"] = f"renamed-{k}"
    (root / VERSION / "scene.json").write_text(json.dumps(scenes))
    with pytest.raises(ValueError, match=f"'val'.*{VERSION}"):
        create_nuscenes_infos(root, tmp_path / "out", version=VERSION)
    with pytest.raises(ValueError, match="v2.0"):
        create_nuscenes_infos(root, tmp_path / "out", version="v2.0")
