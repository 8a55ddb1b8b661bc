"""The generated world read back through the nuScenes devkit (shared tiny world fixture)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from nuscenes import NuScenes
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.utils.geometry_utils import points_in_box, view_points
from pyquaternion import Quaternion

from projects.mmdet3d_plugin.core.bbox.box_layout import CAMERA_NAMES, NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.synthetic import generator
from projects.mmdet3d_plugin.datasets.synthetic.background import (camera_background, ground_tiles,
                                                                  render_background)
from projects.mmdet3d_plugin.datasets.synthetic.cameras import SensorCalibration
from projects.mmdet3d_plugin.datasets.synthetic.catalog import ATTRIBUTES
from projects.mmdet3d_plugin.datasets.synthetic.generator import generate_world
from projects.mmdet3d_plugin.paths import REPO_ROOT

VERSION = "v1.0-mini"
TOOL = REPO_ROOT / "tools" / "create_synthetic_nuscenes.py"


@pytest.fixture(scope="module")
def nusc(synthetic_world: Path) -> NuScenes:
    return NuScenes(VERSION, str(synthetic_world), verbose=False)


def test_loads_with_expected_counts(nusc: NuScenes) -> None:
    assert [s["name"] for s in nusc.scene] == ["scene-0061", "scene-0553", "scene-0103"]
    assert len(nusc.sample) == 12
    assert len(nusc.sample_data) == 12 * 7
    assert {s["channel"] for s in nusc.sensor} == {*CAMERA_NAMES, "LIDAR_TOP"}
    for sample in nusc.sample:
        assert set(sample["data"]) == {*CAMERA_NAMES, "LIDAR_TOP"}
    assert {v["token"]: v["level"] for v in nusc.visibility} == {
        "1": "v0-40", "2": "v40-60", "3": "v60-80", "4": "v80-100"}
    assert sorted(a["name"] for a in nusc.attribute) == sorted(name for name, _ in ATTRIBUTES)


def test_every_token_resolves(nusc: NuScenes, synthetic_world: Path) -> None:
    for sample in nusc.sample:
        nusc.get("scene", sample["scene_token"])
    for sd in nusc.sample_data:
        nusc.get("sample", sd["sample_token"])
        nusc.get("ego_pose", sd["ego_pose_token"])
        nusc.get("sensor", nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])["sensor_token"])
        assert (synthetic_world / sd["filename"]).is_file()
        assert sd["is_key_frame"]
    for ann in nusc.sample_annotation:
        nusc.get("instance", ann["instance_token"])
        nusc.get("sample", ann["sample_token"])
        nusc.get("visibility", ann["visibility_token"])
        for token in ann["attribute_tokens"]:
            nusc.get("attribute", token)
        assert ann["num_radar_pts"] == 0
    for inst in nusc.instance:
        nusc.get("category", inst["category_token"])
    for scene in nusc.scene:
        log = nusc.get("log", scene["log_token"])
        assert (synthetic_world / nusc.get("map", log["map_token"])["filename"]).is_file()


def _walk(nusc: NuScenes, table: str, first: str) -> list[dict]:
    records, token, prev = [], first, ""
    while token:
        record = nusc.get(table, token)
        assert record["prev"] == prev
        records.append(record)
        prev, token = token, record["next"]
    return records


def test_chains_are_consistent(nusc: NuScenes) -> None:
    for scene in nusc.scene:
        samples = _walk(nusc, "sample", scene["first_sample_token"])
        assert len(samples) == scene["nbr_samples"] == 4
        assert samples[-1]["token"] == scene["last_sample_token"]
        assert all(s["scene_token"] == scene["token"] for s in samples)
        for channel in (*CAMERA_NAMES, "LIDAR_TOP"):
            data = _walk(nusc, "sample_data", samples[0]["data"][channel])
            assert [d["sample_token"] for d in data] == [s["token"] for s in samples]
    for inst in nusc.instance:
        anns = _walk(nusc, "sample_annotation", inst["first_annotation_token"])
        assert anns[-1]["token"] == inst["last_annotation_token"]
        assert len(anns) == inst["nbr_annotations"]
        assert len({a["sample_token"] for a in anns}) == len(anns)


def test_all_detection_classes_and_attributes(nusc: NuScenes) -> None:
    names = {category_to_detection_name(a["category_name"]) for a in nusc.sample_annotation}
    assert names == set(NUSCENES_CLASSES)
    prefix = {"car": "vehicle.", "truck": "vehicle.", "bus": "vehicle.", "trailer": "vehicle.",
              "construction_vehicle": "vehicle.", "motorcycle": "cycle.", "bicycle": "cycle.",
              "pedestrian": "pedestrian."}
    for ann in nusc.sample_annotation:
        name = category_to_detection_name(ann["category_name"])
        attrs = [nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]]
        if name in ("barrier", "traffic_cone"):
            assert attrs == []
        else:
            assert len(attrs) == 1 and attrs[0].startswith(prefix[name])


def test_moving_attribute_matches_velocity(nusc: NuScenes) -> None:
    moving = {"vehicle.moving", "pedestrian.moving"}
    still = {"vehicle.parked", "vehicle.stopped", "pedestrian.standing", "cycle.without_rider"}
    seen = set()
    for ann in nusc.sample_annotation:
        speed = np.linalg.norm(nusc.box_velocity(ann["token"])[:2])
        if np.isnan(speed):
            continue
        attrs = {nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]}
        if attrs & moving:
            assert speed > 0.5
            seen.add("moving")
        elif attrs & still:
            assert speed < 1e-6
            seen.add("still")
    assert seen == {"moving", "still"}


def test_timestamps_and_ego_motion(nusc: NuScenes) -> None:
    for scene in nusc.scene:
        samples = _walk(nusc, "sample", scene["first_sample_token"])
        stamps = np.array([s["timestamp"] for s in samples])
        assert np.all(np.diff(stamps) == 500_000)
        assert 1.5e15 < stamps[0] < 1.6e15
        poses = [nusc.get("ego_pose", nusc.get("sample_data", s["data"]["LIDAR_TOP"])["ego_pose_token"])
                 for s in samples]
        xyz = np.array([p["translation"] for p in poses])
        assert np.all(xyz[:, 2] == 0.0)
        assert np.all(np.linalg.norm(np.diff(xyz[:, :2], axis=0), axis=1) <= 12.0 * 0.5 + 1e-6)
        yaw = np.array([Quaternion(p["rotation"]).yaw_pitch_roll[0] for p in poses])
        assert np.all(np.abs(np.angle(np.exp(1j * np.diff(yaw)))) < 0.1)


def test_sensor_rig(nusc: NuScenes) -> None:
    expected = {"CAM_FRONT": 0, "CAM_FRONT_RIGHT": -55, "CAM_FRONT_LEFT": 55, "CAM_BACK": 180,
                "CAM_BACK_LEFT": 110, "CAM_BACK_RIGHT": -110}
    sample = nusc.sample[0]
    for channel, yaw_deg in expected.items():
        sd = nusc.get("sample_data", sample["data"][channel])
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        forward = Quaternion(cs["rotation"]).rotation_matrix[:, 2]
        error = np.angle(np.exp(1j * (np.arctan2(forward[1], forward[0]) - np.deg2rad(yaw_deg))))
        assert abs(np.rad2deg(error)) < 2.0 and abs(forward[2]) < 0.03
        assert 1.4 < cs["translation"][2] < 1.7
        fx = np.array(cs["camera_intrinsic"])[0, 0]
        assert fx == pytest.approx((809.2 if channel == "CAM_BACK" else 1266.0) * 400 / 1600, rel=0.02)
    lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    lidar = nusc.get("calibrated_sensor", lidar_sd["calibrated_sensor_token"])
    assert lidar["translation"][2] == pytest.approx(1.84)
    assert Quaternion(lidar["rotation"]).yaw_pitch_roll[0] == pytest.approx(-np.pi / 2)


def _box_in_sensor(nusc: NuScenes, ann_token: str, sd: dict):
    box = nusc.get_box(ann_token)
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
    box.translate(-np.array(pose["translation"]))
    box.rotate(Quaternion(pose["rotation"]).inverse)
    box.translate(-np.array(cs["translation"]))
    box.rotate(Quaternion(cs["rotation"]).inverse)
    return box


def test_num_lidar_pts_recount(nusc: NuScenes) -> None:
    nonzero = 0
    for sample in nusc.sample:
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        points = np.fromfile(nusc.get_sample_data_path(sd["token"]), dtype=np.float32).reshape(-1, 5)
        assert set(np.unique(points[:, 4]).astype(int)) <= set(range(32))
        for token in sample["anns"]:
            box = _box_in_sensor(nusc, token, sd)
            count = int(points_in_box(box, points[:, :3].T).sum())
            assert count == nusc.get("sample_annotation", token)["num_lidar_pts"]
            nonzero += count > 0
    assert nonzero > 0.5 * len(nusc.sample_annotation)


def test_visible_boxes_are_drawn(nusc: NuScenes, synthetic_world: Path) -> None:
    from PIL import Image

    tiles, checked = ground_tiles(), 0
    for sample in nusc.sample[:6]:
        for channel in CAMERA_NAMES:
            sd = nusc.get("sample_data", sample["data"][channel])
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            pose = nusc.get("ego_pose", sd["ego_pose_token"])
            calib = SensorCalibration(channel, Quaternion(cs["rotation"]).rotation_matrix,
                                      np.array(cs["translation"]), np.array(cs["camera_intrinsic"]),
                                      (sd["width"], sd["height"]))
            background = render_background(camera_background(calib, tiles), np.array(pose["translation"][:2]),
                                           Quaternion(pose["rotation"]).yaw_pitch_roll[0]).astype(float)
            image = np.asarray(Image.open(synthetic_world / sd["filename"])).astype(float)
            for token in sample["anns"]:
                if nusc.get("sample_annotation", token)["visibility_token"] != "4":
                    continue
                box = _box_in_sensor(nusc, token, sd)
                if box.center[2] < 2.0:
                    continue
                u, v = view_points(box.center[:, None], calib.intrinsic, normalize=True)[:2, 0].astype(int)
                if not (3 <= u < sd["width"] - 3 and 3 <= v < sd["height"] - 3):
                    continue
                patch = np.median(image[v - 1:v + 2, u - 1:u + 2].reshape(-1, 3), axis=0)
                assert np.abs(patch - background[v, u]).sum() > 40.0, (channel, token)
                checked += 1
    assert checked >= 5


def test_detection_eval_on_val_split(nusc: NuScenes, tmp_path: Path) -> None:
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.loaders import load_gt
    from nuscenes.eval.detection.data_classes import DetectionBox
    from nuscenes.eval.detection.evaluate import DetectionEval

    gt = load_gt(nusc, "mini_val", DetectionBox)
    val_samples = [s["token"] for s in nusc.sample
                   if nusc.get("scene", s["scene_token"])["name"] == "scene-0103"]
    assert sorted(gt.sample_tokens) == sorted(val_samples)
    results = {token: [dict(b.serialize(), detection_score=1.0) for b in gt[token]] for token in val_samples}
    for boxes in results.values():
        for b in boxes:
            b["velocity"] = [0.0 if np.isnan(v) else v for v in b["velocity"]]
            b["attribute_name"] = b["attribute_name"] or ""
    meta = dict(use_camera=True, use_lidar=False, use_radar=False, use_map=False, use_external=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"meta": meta, "results": results}))
    evaluator = DetectionEval(nusc, config_factory("detection_cvpr_2019"), str(path), "mini_val",
                              str(tmp_path), verbose=False)
    metrics, _ = evaluator.evaluate()
    evaluated = {box.detection_name for box in evaluator.gt_boxes.all}
    assert len(evaluated) >= 6
    for name in evaluated:
        assert metrics.mean_dist_aps[name] > 0.95, name


def test_determinism_and_cli(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("create_synthetic_nuscenes", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = dict(train_scenes=1, val_scenes=1, samples_per_scene=2, image_size=(160, 90), seed=3)
    first = generate_world(tmp_path / "a", **args)
    second = tool.main(["--out", str(tmp_path / "b"), "--train-scenes", "1", "--val-scenes", "1",
                   "--samples-per-scene", "2", "--image-size", "160", "90", "--seed", "3"])
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    other = generate_world(tmp_path / "c", **{**args, "seed": 4})
    assert (other / VERSION / "sample_annotation.json").read_bytes() != \
        (first / VERSION / "sample_annotation.json").read_bytes()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(train_scenes=0), "train_scenes must be a positive integer"),
        (dict(val_scenes=-1), "val_scenes must be a positive integer"),
        (dict(samples_per_scene=0), "samples_per_scene must be a positive integer"),
        (dict(image_size=(0, 90)), "image_width must be a positive integer"),
        (dict(image_size=(160,)), "image_size must be"),
        (dict(seed=-1), "seed must be a non-negative integer"),
        (dict(train_scenes=9), "'mini_train' has 8 scene names, 9 requested"),
        (dict(version="v1.0-test"), "version must be one of"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_world(tmp_path / "w", **{**dict(train_scenes=1, val_scenes=1, samples_per_scene=1), **kwargs})
    assert not (tmp_path / "w").exists()


def test_trainval_names_and_limits() -> None:
    train, val = generator.scene_names("v1.0-trainval", 3, 2)
    assert len(train) == 3 and len(val) == 2 and not set(train) & set(val)
    with pytest.raises(ValueError, match="'val' has 150 scene names"):
        generator.scene_names("v1.0-trainval", 1, 151)


def test_refuses_other_version_and_foreign_dirs(tmp_path: Path) -> None:
    (tmp_path / "w" / "v1.0-trainval").mkdir(parents=True)
    with pytest.raises(ValueError, match="already holds nuScenes version"):
        generate_world(tmp_path / "w", train_scenes=1, val_scenes=1, samples_per_scene=1)
    (tmp_path / "x" / "samples").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds \\['samples'\\] but no v1.0-mini"):
        generate_world(tmp_path / "x", train_scenes=1, val_scenes=1, samples_per_scene=1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        generate_world(tmp_path / "file", train_scenes=1, val_scenes=1, samples_per_scene=1)


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = generator.generate_scene

    def fail_on_second(index: int, *args: object) -> object:
        if index == 1:
            raise RuntimeError("disk full")
        return real(index, *args)

    monkeypatch.setattr(generator, "generate_scene", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_world(tmp_path / "w", train_scenes=1, val_scenes=1, samples_per_scene=1, image_size=(64, 36))
    assert list(tmp_path.iterdir()) == []


def test_regenerate_same_version_keeps_other_files(tmp_path: Path) -> None:
    args = dict(train_scenes=1, val_scenes=1, samples_per_scene=1, image_size=(64, 36))
    root = generate_world(tmp_path / "w", **args)
    (root / "infos.pkl").write_bytes(b"keep me")
    before = (root / VERSION / "scene.json").read_bytes()
    generate_world(root, **{**args, "seed": 1})
    assert (root / "infos.pkl").read_bytes() == b"keep me"
    assert (root / VERSION / "scene.json").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    NuScenes(VERSION, str(root), verbose=False)
