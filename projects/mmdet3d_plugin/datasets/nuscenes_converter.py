"""nuScenes tables to StreamPETR temporal info files (``{tag}_temporal_infos_{split}.pkl``).

Each file is a pickle of ``dict(infos=[...], metadata=dict(version=...))`` with one info per
key frame, sorted by scene name, then time, with the field names of StreamPETR's converter
(see ``docs/data_contract.md``). File paths (``lidar_path``, ``cams[*].data_path``) are
relative to the data root.

Ground truth, per key frame (``M`` annotations, in the sample's annotation order):

* ``gt_boxes`` (M, 7) float64 ``x, y, z, l, w, h, yaw`` in the LIDAR_TOP frame.
* ``gt_names`` (M,): the detection name (devkit mapping) of each box, or the raw nuScenes
  category for categories outside the detection classes (the dataset filters them).
* ``gt_velocity`` (M, 2) float64 in the LIDAR_TOP frame. As upstream, it is ``nan`` where the
  devkit cannot estimate it (an instance annotated once, or neighbours too far apart in time);
  the dataset turns ``nan`` into 0.
* ``num_lidar_pts``, ``num_radar_pts`` (M,) int64, ``valid_flag`` (M,) bool (any point).
* ``bboxes2d``, ``labels2d``, ``centers2d``, ``depths``: lists over the six cameras, see
  :mod:`projects.mmdet3d_plugin.datasets.camera_boxes` (labels index ``INFO_2D_CATEGORIES``).
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.bbox.box_layout import CAMERA_NAMES
from .camera_boxes import INFO_2D_CATEGORIES, box_corners, project_boxes_to_camera
from .geometry import invert_pose, pose_matrix, rotation_matrix, transform_points

if TYPE_CHECKING:
    from nuscenes.nuscenes import NuScenes

NUSCENES_TABLES: tuple[str, ...] = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)

# Version -> (output split name, nuscenes.utils.splits attribute) pairs.
VERSION_SPLITS: dict[str, tuple[tuple[str, str], ...]] = {
    "v1.0-trainval": (("train", "train"), ("val", "val")),
    "v1.0-mini": (("train", "mini_train"), ("val", "mini_val")),
    "v1.0-test": (("test", "test"),),
}


def info_file_name(extra_tag: str, split: str) -> str:
    """File name of the info file of one split, e.g. ``nuscenes2d_temporal_infos_train.pkl``."""
    return f"{extra_tag}_temporal_infos_{split}.pkl"


def check_nuscenes_root(root_path: Path, version: str) -> None:
    """Raise FileNotFoundError if the data root, the version folder, a table or a map is missing."""
    if not root_path.is_dir():
        raise FileNotFoundError(f"nuScenes data root {root_path} does not exist")
    table_root = root_path / version
    if not table_root.is_dir():
        raise FileNotFoundError(
            f"nuScenes version folder {table_root} does not exist (expected the tables of {version} there)"
        )
    for table in NUSCENES_TABLES:
        if not (table_root / f"{table}.json").is_file():
            raise FileNotFoundError(f"nuScenes table {table_root / f'{table}.json'} does not exist")
    with open(table_root / "map.json", encoding="utf-8") as file:
        for record in json.load(file):
            if not (root_path / record["filename"]).is_file():
                raise FileNotFoundError(f"nuScenes map mask {root_path / record['filename']} does not exist")


def split_scene_tokens(nusc: NuScenes, version: str) -> dict[str, list[str]]:
    """Scene tokens of each output split, sorted by scene name.

    Returns:
        ``{split: [scene_token, ...]}``; only the scenes of the official split lists that the
        tables hold.
    """
    from nuscenes.utils import splits

    if version not in VERSION_SPLITS:
        raise ValueError(f"unknown nuScenes version {version!r}; expected one of {sorted(VERSION_SPLITS)}")
    by_name = {scene["name"]: scene["token"] for scene in nusc.scene}
    result = {}
    for split, attribute in VERSION_SPLITS[version]:
        names = sorted(name for name in getattr(splits, attribute) if name in by_name)
        if not names:
            raise ValueError(
                f"split {split!r} ({attribute}) of {version} has no scene in {nusc.dataroot}: "
                f"the tables hold {len(by_name)} scenes, none of them in nuscenes.utils.splits.{attribute}"
            )
        result[split] = [by_name[name] for name in names]
    return result


def sensor_pose(nusc: NuScenes, sample_data_token: str) -> tuple[dict, dict, dict]:
    """The sample_data, calibrated_sensor and ego_pose records of one sample_data token."""
    record = nusc.get("sample_data", sample_data_token)
    calibration = nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
    ego = nusc.get("ego_pose", record["ego_pose_token"])
    return record, calibration, ego


def sensor_to_global(calibration: dict, ego: dict) -> np.ndarray:
    """(4, 4) sensor -> global transform: ``ego2global @ sensor2ego``."""
    return pose_matrix(ego["rotation"], ego["translation"]) @ pose_matrix(
        calibration["rotation"], calibration["translation"]
    )


def camera_info(nusc: NuScenes, sample_data_token: str, lidar_to_global: np.ndarray, cam: str) -> dict[str, Any]:
    """The ``cams[cam]`` entry of an info: paths, poses, sensor->LiDAR transform, intrinsics."""
    record, calibration, ego = sensor_pose(nusc, sample_data_token)
    cam_to_lidar = invert_pose(lidar_to_global) @ sensor_to_global(calibration, ego)
    return {
        "data_path": record["filename"],
        "type": cam,
        "sample_data_token": record["token"],
        "sensor2ego_translation": calibration["translation"],
        "sensor2ego_rotation": calibration["rotation"],
        "ego2global_translation": ego["translation"],
        "ego2global_rotation": ego["rotation"],
        "timestamp": record["timestamp"],
        "sensor2lidar_rotation": cam_to_lidar[:3, :3],
        "sensor2lidar_translation": cam_to_lidar[:3, 3],
        "cam_intrinsic": np.asarray(calibration["camera_intrinsic"], dtype=np.float64),
    }


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"camera image {path} does not exist")
    with Image.open(path) as image:
        return image.size


def _annotation_arrays(nusc: NuScenes, ann_tokens: list[str]) -> dict[str, np.ndarray]:
    """Global-frame boxes and per-annotation records of one sample, (M, ...) arrays."""
    from nuscenes.eval.detection.utils import category_to_detection_name

    records = [nusc.get("sample_annotation", token) for token in ann_tokens]
    names = [category_to_detection_name(r["category_name"]) or r["category_name"] for r in records]
    wlh = np.array([r["size"] for r in records], dtype=np.float64).reshape(-1, 3)
    velocity = np.array([nusc.box_velocity(token) for token in ann_tokens], dtype=np.float64).reshape(-1, 3)
    velocity[:, 2] = 0.0
    return {
        "names": np.array(names, dtype=object).astype(str).reshape(-1),
        "centers": np.array([r["translation"] for r in records], dtype=np.float64).reshape(-1, 3),
        "lwh": wlh[:, [1, 0, 2]],
        "rotations": np.array([rotation_matrix(r["rotation"]) for r in records]).reshape(-1, 3, 3),
        "velocity": velocity,
        "num_lidar_pts": np.array([r["num_lidar_pts"] for r in records], dtype=np.int64),
        "num_radar_pts": np.array([r["num_radar_pts"] for r in records], dtype=np.int64),
    }


def lidar_ground_truth(annotations: dict[str, np.ndarray], lidar_to_global: np.ndarray) -> dict[str, np.ndarray]:
    """``gt_boxes`` (M, 7), ``gt_names``, ``gt_velocity`` (M, 2) and counts in the LiDAR frame."""
    global_to_lidar = invert_pose(lidar_to_global)
    centers = transform_points(global_to_lidar, annotations["centers"])
    rotations = np.einsum("ij,mjk->mik", global_to_lidar[:3, :3], annotations["rotations"])
    yaw = np.arctan2(rotations[:, 1, 0], rotations[:, 0, 0])
    velocity = annotations["velocity"] @ global_to_lidar[:3, :3].T
    num_lidar, num_radar = annotations["num_lidar_pts"], annotations["num_radar_pts"]
    return {
        "gt_boxes": np.concatenate([centers, annotations["lwh"], yaw[:, None]], axis=1),
        "gt_names": annotations["names"],
        "gt_velocity": velocity[:, :2],
        "num_lidar_pts": num_lidar,
        "num_radar_pts": num_radar,
        "valid_flag": (num_lidar + num_radar) > 0,
    }


def camera_ground_truth(
    nusc: NuScenes,
    cams: dict[str, dict],
    image_sizes: dict[str, tuple[int, int]],
    annotations: dict[str, np.ndarray],
) -> dict[str, list[np.ndarray]]:
    """Per-camera 2D ground truth lists (``bboxes2d``, ``labels2d``, ``centers2d``, ``depths``)."""
    detection = np.array([name in INFO_2D_CATEGORIES for name in annotations["names"]], dtype=bool)
    labels = np.array([INFO_2D_CATEGORIES.index(n) for n in annotations["names"][detection]], dtype=np.int64)
    corners = box_corners(
        annotations["centers"][detection], annotations["lwh"][detection], annotations["rotations"][detection]
    )
    result: dict[str, list[np.ndarray]] = {"bboxes2d": [], "labels2d": [], "centers2d": [], "depths": []}
    for cam in CAMERA_NAMES:
        _, calibration, ego = sensor_pose(nusc, cams[cam]["sample_data_token"])
        global_to_cam = invert_pose(sensor_to_global(calibration, ego))
        boxes = project_boxes_to_camera(
            transform_points(global_to_cam, corners.reshape(-1, 3)).reshape(-1, 8, 3),
            transform_points(global_to_cam, annotations["centers"][detection]),
            cams[cam]["cam_intrinsic"],
            labels,
            image_sizes[cam],
        )
        for key in result:
            result[key].append(getattr(boxes, key))
    return result


def sample_info(nusc: NuScenes, root_path: Path, sample: dict, frame_idx: int, with_annotations: bool) -> dict:
    """The info dict of one key frame (see the module docstring for the fields)."""
    lidar_record, lidar_calibration, lidar_ego = sensor_pose(nusc, sample["data"]["LIDAR_TOP"])
    lidar_to_global = sensor_to_global(lidar_calibration, lidar_ego)
    info: dict[str, Any] = {
        "token": sample["token"],
        "scene_token": sample["scene_token"],
        "prev": sample["prev"],
        "next": sample["next"],
        "frame_idx": frame_idx,
        "timestamp": sample["timestamp"],
        "lidar_path": lidar_record["filename"],
        "lidar2ego_translation": lidar_calibration["translation"],
        "lidar2ego_rotation": lidar_calibration["rotation"],
        "ego2global_translation": lidar_ego["translation"],
        "ego2global_rotation": lidar_ego["rotation"],
        "cams": {cam: camera_info(nusc, sample["data"][cam], lidar_to_global, cam) for cam in CAMERA_NAMES},
    }
    image_sizes = {cam: image_size(root_path / info["cams"][cam]["data_path"]) for cam in CAMERA_NAMES}
    if with_annotations:
        annotations = _annotation_arrays(nusc, sample["anns"])
        info.update(lidar_ground_truth(annotations, lidar_to_global))
        info.update(camera_ground_truth(nusc, info["cams"], image_sizes, annotations))
    return info


def scene_infos(nusc: NuScenes, root_path: Path, scene_token: str, with_annotations: bool) -> list[dict]:
    """Infos of all key frames of one scene in temporal order, ``frame_idx`` from 0."""
    infos = []
    token = nusc.get("scene", scene_token)["first_sample_token"]
    while token:
        sample = nusc.get("sample", token)
        infos.append(sample_info(nusc, root_path, sample, len(infos), with_annotations))
        token = sample["next"]
    return infos


def write_pickle_atomic(data: Any, path: Path) -> None:
    """Pickle ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def create_nuscenes_infos(
    root_path: str | Path,
    out_dir: str | Path,
    extra_tag: str = "nuscenes2d",
    version: str = "v1.0-trainval",
) -> dict[str, Path]:
    """Write the temporal info files of every split of ``version``.

    Args:
        root_path: nuScenes data root (holds ``samples/``, ``maps/`` and ``{version}/``).
        out_dir: folder for the info files (created if missing).
        extra_tag: file name prefix.
        version: ``v1.0-trainval`` (train, val), ``v1.0-mini`` (mini_train, mini_val written as
            train, val) or ``v1.0-test`` (test, without annotations).

    Returns:
        ``{split: path}`` of the written files.
    """
    from nuscenes.nuscenes import NuScenes
    from tqdm import tqdm

    root_path, out_dir = Path(root_path), Path(out_dir)
    if version not in VERSION_SPLITS:
        raise ValueError(f"unknown nuScenes version {version!r}; expected one of {sorted(VERSION_SPLITS)}")
    check_nuscenes_root(root_path, version)
    nusc = NuScenes(version=version, dataroot=str(root_path), verbose=False)
    with_annotations = version != "v1.0-test"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, scene_tokens in split_scene_tokens(nusc, version).items():
        infos = []
        for scene_token in tqdm(scene_tokens, desc=f"{version} {split}", unit="scene"):
            infos.extend(scene_infos(nusc, root_path, scene_token, with_annotations))
        path = out_dir / info_file_name(extra_tag, split)
        write_pickle_atomic({"infos": infos, "metadata": {"version": version}}, path)
        written[split] = path
    return written
