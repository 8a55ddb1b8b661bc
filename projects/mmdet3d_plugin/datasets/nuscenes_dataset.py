"""The nuScenes camera dataset of StreamPETR configs (``type='CustomNuScenesDataset'``).

It reads a temporal info file (ours or StreamPETR's, see ``docs/data_contract.md``), keeps the
infos grouped by scene in temporal order, splits the scenes into streaming segments, and
turns one info into the results dict the pipeline consumes (:meth:`get_data_info`).
"""
from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..core import batch_contract
from ..core.bbox.box_layout import CAMERA_NAMES, NUSCENES_CLASSES
from ..registry import DATASETS
from .camera_boxes import INFO_2D_CATEGORIES
from .geometry import intrinsic_matrix, invert_pose, pose_matrix
from .info_pickle import InfoFileError, load_info_pickle
from .labelled_subset import check_labelled_options, empty_annotations, labelled_mask
from .pipelines.compose import Compose

logger = logging.getLogger(__name__)

#: Batch contract key -> info field of the per-camera 2D annotations.
PER_CAMERA_INFO_KEYS: dict[str, str] = dict(
    zip(batch_contract.keys(batch_contract.TARGETS_2D), ("bboxes2d", "labels2d", "centers2d", "depths")))
#: The per-camera matrices the dataset computes from the calibration.
CAMERA_MATRIX_KEYS = tuple(key for key in batch_contract.keys(batch_contract.GEOMETRY)
                           if batch_contract.spec(key).per_camera)
#: Upstream configs' name for the meta entries, which the contract sample holds flat.
UPSTREAM_META_NAME = "img_metas"
#: What ``collect_keys`` may name: the keys a sample can carry, and ``img_metas``.
COLLECTABLE_KEYS = batch_contract.keys(*batch_contract.SAMPLE_GROUPS, batch_contract.UPSTREAM_EXTRAS) + (
    UPSTREAM_META_NAME,)


def sample_keys_of(collect_keys: Sequence[str]) -> tuple[str, ...]:
    """The contract keys every sample must carry for ``collect_keys`` (``img_metas``: the meta keys).

    Raises:
        KeyError: naming a key that is not in :data:`COLLECTABLE_KEYS`, and those keys.
    """
    if isinstance(collect_keys, str):
        raise TypeError(f"collect_keys must be a list of key names, not the string {collect_keys!r}")
    for key in collect_keys:
        if key not in COLLECTABLE_KEYS:
            close = difflib.get_close_matches(key, COLLECTABLE_KEYS, n=3)
            raise KeyError(f"CustomNuScenesDataset collect_keys: {key!r} is not a sample key of the batch "
                           f"contract (core/batch_contract.py); close matches: {close}; allowed: "
                           f"{list(COLLECTABLE_KEYS)}")
    named = [batch_contract.keys(batch_contract.META) if key == UPSTREAM_META_NAME else (key,)
             for key in collect_keys]
    return tuple(dict.fromkeys(key for keys in named for key in keys))


def read_info_file(ann_file: str | Path) -> tuple[list[dict], dict]:
    """The raw infos and the metadata of a temporal info file (ours or StreamPETR's).

    The file is read with :func:`.info_pickle.load_info_pickle`: only plain containers and
    numpy arrays/scalars are built, any other global is refused before it runs.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the file references a refused global (named with the file).
        InfoFileError: the file is empty, truncated, not a pickle, or not an info file.
    """
    path = Path(ann_file)
    data = load_info_pickle(path)
    if not isinstance(data, Mapping) or "infos" not in data:
        found = f"a dict with keys {sorted(map(str, data))}" if isinstance(data, Mapping) else type(data).__name__
        raise InfoFileError(
            f"info file {path} holds {found}; expected dict(infos=[...], metadata=dict(version=...))"
        )
    return list(data["infos"]), dict(data.get("metadata", {}))


def load_infos(ann_file: str | Path, version: str | None) -> tuple[list[dict], str | None]:
    """Infos of a temporal info file, grouped by scene (first appearance) and sorted by time.

    Args:
        ann_file: the ``.pkl`` file.
        version: expected ``metadata['version']``; ``None`` accepts any.

    Returns:
        the list of info dicts, and the nuScenes version the file was made from.
    """
    infos, metadata = read_info_file(ann_file)
    found = metadata.get("version")
    if version is not None and found != version:
        raise ValueError(f"info file {ann_file} was made from nuScenes {found!r}, expected {version!r}")
    scene_order: dict[str, int] = {}
    for info in infos:
        scene_order.setdefault(info["scene_token"], len(scene_order))
    return sorted(infos, key=lambda info: (scene_order[info["scene_token"]], info["timestamp"])), found


def segment_flags(scene_ids: np.ndarray, split_num: int | str) -> np.ndarray:
    """Segment id of each frame: every scene cut into ``split_num`` consecutive chunks.

    Chunks hold ``ceil(n / split_num)`` frames (the last one fewer), as in StreamPETR;
    ``split_num='all'`` makes every frame its own segment.

    Args:
        scene_ids: (N,) int64 scene id per frame, equal ids contiguous.
        split_num: chunks per scene, or ``'all'``.

    Returns:
        (N,) int64 segment ids, increasing from 0.
    """
    if split_num == "all":
        return np.arange(len(scene_ids), dtype=np.int64)
    flags = np.empty(len(scene_ids), dtype=np.int64)
    next_flag = 0
    starts = np.flatnonzero(np.r_[True, scene_ids[1:] != scene_ids[:-1]]) if len(scene_ids) else []
    ends = list(starts[1:]) + [len(scene_ids)]
    for start, end in zip(starts, ends):
        chunk = math.ceil((end - start) / split_num)
        offsets = np.arange(end - start) // chunk
        flags[start:end] = next_flag + offsets
        next_flag += int(offsets[-1]) + 1
    return flags


@DATASETS.register_module()
class CustomNuScenesDataset(Dataset):
    """nuScenes multi-camera samples in streaming order.

    Args:
        ann_file: temporal info ``.pkl`` (as configs give it: a path, not joined to data_root).
        pipeline: transform configs (``type=...``), run by ``__getitem__`` through ``Compose``.
        data_root: folder that relative file paths in the infos are resolved against; paths
            that already start with it (StreamPETR info files) are used as they are.
        classes: detection class names; labels index this list.
        modality: ``dict(use_camera=True, ...)`` as in StreamPETR configs; a camera is required.
        test_mode: no annotations in the results.
        seq_mode: streaming training: segments are scene chunks (``seq_split_num``); otherwise
            each scene is one segment.
        seq_split_num: chunks per scene in ``seq_mode`` (int >= 1 or ``'all'``).
        queue_length: frames per sample; only 1 (streaming) is supported.
        num_frame_losses: frames with losses; only 1 is supported.
        use_valid_flag: keep boxes with ``valid_flag`` (LiDAR or radar points); otherwise keep
            boxes with at least one LiDAR point (mmdet3d's rule).
        filter_empty_gt: drop (at load time, so the temporal order stays) the frames without
            any kept box; ignored in ``test_mode``.
        collect_keys: keys every sample must carry after the pipeline (checked by
            ``__getitem__``): batch contract sample keys, or ``img_metas`` for the meta keys; an
            unknown key raises at construction (:func:`sample_keys_of`).
        box_type_3d: only ``'LiDAR'``.
        version: expected nuScenes version of the info file (``None``: not checked).
        labelled_fraction: label-scarce training: the share of frames, in ``(0, 1]``, that keep
            their ground truth; the others carry empty annotations and ``gt_labelled=False``
            (see ``datasets/labelled_subset.py``). Below 1 every sample carries ``gt_labelled``;
            at 1 (the default) none does. Training only (an error in ``test_mode``).
        labelled_seed: chooses the labelled subset (with the sample tokens).

    Attributes:
        infos: the info dicts in dataset order (scene, then time).
        scene_ids: (N,) int64 scene ordinal of each index.
        flag: (N,) int64 segment id of each index (what the samplers group by);
            ``prev_exists`` is False where it changes.
        labelled: (N,) bool, the frames that keep their ground truth (all True at fraction 1).
        num_labelled: ``labelled.sum()``.
    """

    def __init__(
        self,
        ann_file: str | Path,
        pipeline: Sequence[Mapping[str, Any]] | None = None,
        data_root: str | Path = "",
        classes: Sequence[str] = NUSCENES_CLASSES,
        modality: Mapping[str, bool] | None = None,
        test_mode: bool = False,
        seq_mode: bool = False,
        seq_split_num: int | str = 1,
        queue_length: int = 1,
        num_frame_losses: int = 1,
        use_valid_flag: bool = False,
        filter_empty_gt: bool = False,
        collect_keys: Sequence[str] = (),
        box_type_3d: str = "LiDAR",
        version: str | None = None,
        labelled_fraction: float = 1.0,
        labelled_seed: int = 0,
    ) -> None:
        super().__init__()
        self._check_options(modality, seq_split_num, queue_length, num_frame_losses, box_type_3d)
        check_labelled_options(labelled_fraction, labelled_seed, test_mode)
        self.data_root = str(data_root)
        self.ann_file = str(ann_file)
        self.classes = tuple(classes)
        self.test_mode = test_mode
        self.seq_mode = seq_mode
        self.seq_split_num = seq_split_num
        self.use_valid_flag = use_valid_flag
        self.collect_keys = sample_keys_of(collect_keys)
        self.pipeline = Compose(list(pipeline or []))
        self.infos, self.version = load_infos(ann_file, version)
        if filter_empty_gt and not test_mode:
            self.infos = [info for info in self.infos if self._box_mask(info).any()]
        scene_tokens = [info["scene_token"] for info in self.infos]
        changes = np.r_[0, np.cumsum([a != b for a, b in zip(scene_tokens[1:], scene_tokens[:-1])])]
        self.scene_ids = changes[: len(self.infos)].astype(np.int64)
        self.flag = segment_flags(self.scene_ids, seq_split_num if seq_mode else 1)
        self.labelled_fraction = float(labelled_fraction)
        self.labelled_seed = int(labelled_seed)
        self.labelled = labelled_mask(self.sample_tokens, self.labelled_fraction, self.labelled_seed)
        self.num_labelled = int(self.labelled.sum())
        if self.labelled_fraction < 1.0:
            logger.info("CustomNuScenesDataset %s: %d of %d training frames labelled (labelled_fraction=%g, "
                        "labelled_seed=%d)", ann_file, self.num_labelled, len(self), self.labelled_fraction,
                        self.labelled_seed)

    @staticmethod
    def _check_options(
        modality: Mapping[str, bool] | None,
        seq_split_num: int | str,
        queue_length: int,
        num_frame_losses: int,
        box_type_3d: str,
    ) -> None:
        if modality is not None and not modality.get("use_camera", False):
            raise ValueError(f"CustomNuScenesDataset needs modality['use_camera']=True, got {dict(modality)}")
        if seq_split_num != "all" and not (isinstance(seq_split_num, int) and seq_split_num >= 1):
            raise ValueError(f"seq_split_num must be an int >= 1 or 'all', got {seq_split_num!r}")
        if queue_length != 1:
            raise ValueError(f"queue_length={queue_length} is not supported: streaming training uses queue_length=1")
        if num_frame_losses != 1:
            raise ValueError(f"num_frame_losses={num_frame_losses} is not supported: only 1 (streaming)")
        if box_type_3d != "LiDAR":
            raise ValueError(f"box_type_3d must be 'LiDAR' (boxes are in the LIDAR_TOP frame), got {box_type_3d!r}")

    def __len__(self) -> int:
        return len(self.infos)

    @property
    def sample_tokens(self) -> list[str]:
        """Sample token of each index."""
        return [info["token"] for info in self.infos]

    def resolve_path(self, path: str) -> str:
        """A file path of an info made usable: absolute, cwd-relative under data_root, or joined to it."""
        if os.path.isabs(path) or not self.data_root:
            return str(path)
        normalised, root = os.path.normpath(path), os.path.normpath(self.data_root)
        if root != "." and (normalised == root or normalised.startswith(root + os.sep)):
            return normalised
        return os.path.join(self.data_root, path)

    def _box_mask(self, info: Mapping[str, Any]) -> np.ndarray:
        """(M,) bool: boxes of a kept class that pass the valid / LiDAR-point filter."""
        names = np.asarray(info["gt_names"]).reshape(-1)
        valid = np.asarray(info["valid_flag"] if self.use_valid_flag else np.asarray(info["num_lidar_pts"]) > 0)
        return np.isin(names, self.classes) & valid.reshape(-1).astype(bool)

    def get_data_info(self, index: int) -> dict[str, Any]:
        """The results dict of one index, fed to the pipeline.

        Returns:
            ``sample_idx``, ``scene_token``, ``frame_idx``, ``timestamp`` (float64 s),
            ``prev_exists``, ``ego_pose`` / ``ego_pose_inv`` (4, 4) float64 LiDAR<->global,
            ``lidar_path`` (the LiDAR sweep, resolved like the images; when the info has it),
            ``cam_names``, ``img_filename``, ``img_timestamp`` (s), ``lidar2img``,
            ``intrinsics`` and ``extrinsics`` (lists of N (4, 4) float64; extrinsics are
            LiDAR->camera), and unless ``test_mode`` the annotations of :meth:`get_ann_info`
            (with 0 rows on a frame outside the labelled subset) and, when
            ``labelled_fraction < 1``, ``gt_labelled`` (bool).
        """
        info = self.infos[index]
        ego_pose = pose_matrix(info["ego2global_rotation"], info["ego2global_translation"]) @ pose_matrix(
            info["lidar2ego_rotation"], info["lidar2ego_translation"]
        )
        results: dict[str, Any] = {
            "sample_idx": info["token"],
            "scene_token": info["scene_token"],
            "frame_idx": int(info["frame_idx"]),
            "timestamp": np.float64(info["timestamp"]) / 1e6,
            "prev_exists": bool(index > 0 and self.flag[index - 1] == self.flag[index]),
            "ego_pose": ego_pose,
            "ego_pose_inv": invert_pose(ego_pose),
        }
        if "lidar_path" in info:
            results["lidar_path"] = self.resolve_path(info["lidar_path"])
        results.update(self._camera_inputs(info))
        if not self.test_mode:
            annotations = self.get_ann_info(index)
            results.update(annotations if self.labelled[index] else empty_annotations(annotations))
            if self.labelled_fraction < 1.0:
                results["gt_labelled"] = bool(self.labelled[index])
        return results

    def _camera_inputs(self, info: Mapping[str, Any]) -> dict[str, list]:
        """Per-camera file names, timestamps and projection matrices of one info."""
        cams = info["cams"]
        missing = [cam for cam in CAMERA_NAMES if cam not in cams]
        if missing:
            raise KeyError(f"info {info['token']} lacks cameras {missing}; it has {sorted(cams)}")
        keys = ("img_filename", "img_timestamp") + CAMERA_MATRIX_KEYS
        inputs: dict[str, list] = {key: [] for key in keys}
        for cam in CAMERA_NAMES:
            cam_info = cams[cam]
            cam2lidar = pose_matrix(cam_info["sensor2lidar_rotation"], cam_info["sensor2lidar_translation"])
            lidar2cam = invert_pose(cam2lidar)
            intrinsic = intrinsic_matrix(cam_info["cam_intrinsic"])
            inputs["img_filename"].append(self.resolve_path(cam_info["data_path"]))
            inputs["img_timestamp"].append(np.float64(cam_info["timestamp"]) / 1e6)
            inputs["lidar2img"].append(intrinsic @ lidar2cam)
            inputs["intrinsics"].append(intrinsic)
            inputs["extrinsics"].append(lidar2cam)
        inputs["cam_names"] = list(CAMERA_NAMES)
        return inputs

    def get_ann_info(self, index: int) -> dict[str, Any]:
        """Annotations of one index, restricted to ``classes`` (and the valid / point filter).

        These are the info's annotations whether or not the frame is in the labelled subset;
        :meth:`get_data_info` (what the pipeline sees) empties them for unlabelled frames.

        Returns:
            ``gt_bboxes_3d`` (M, 9) float32 box layout (``nan`` velocities set to 0),
            ``gt_labels_3d`` (M,) int64, ``gt_names`` (M,), and per camera (lists of N)
            ``gt_bboxes`` (Mi, 4) float32, ``gt_labels`` (Mi,) int64, ``centers2d`` (Mi, 2)
            float32, ``depths`` (Mi,) float32.
        """
        info = self.infos[index]
        keep = self._box_mask(info)
        names = np.asarray(info["gt_names"]).reshape(-1)[keep]
        boxes = np.asarray(info["gt_boxes"], dtype=np.float64).reshape(-1, 7)[keep]
        velocity = np.nan_to_num(np.asarray(info["gt_velocity"], dtype=np.float64).reshape(-1, 2)[keep], nan=0.0)
        annotations: dict[str, Any] = {
            "gt_bboxes_3d": np.concatenate([boxes, velocity], axis=1).astype(np.float32),
            "gt_labels_3d": np.array([self.classes.index(name) for name in names], dtype=np.int64),
            "gt_names": names,
        }
        annotations.update(self._camera_annotations(info))
        return annotations

    def _camera_annotations(self, info: Mapping[str, Any]) -> dict[str, list[np.ndarray]]:
        """Per-camera 2D annotations with labels mapped from the info order to ``classes``."""
        missing = [key for key in PER_CAMERA_INFO_KEYS.values() if key not in info]
        if missing:
            close = {key: difflib.get_close_matches(key, list(info), n=1) for key in missing}
            raise KeyError(f"info {info['token']} lacks the 2D annotation fields {missing} (close: {close})")
        to_class = np.array([self.classes.index(n) if n in self.classes else -1 for n in INFO_2D_CATEGORIES])
        result: dict[str, list[np.ndarray]] = {key: [] for key in PER_CAMERA_INFO_KEYS}
        for cam in range(len(CAMERA_NAMES)):
            labels = to_class[np.asarray(info["labels2d"][cam], dtype=np.int64).reshape(-1)]
            keep = labels >= 0
            result["gt_bboxes"].append(np.asarray(info["bboxes2d"][cam], dtype=np.float32).reshape(-1, 4)[keep])
            result["gt_labels"].append(labels[keep])
            result["centers2d"].append(np.asarray(info["centers2d"][cam], dtype=np.float32).reshape(-1, 2)[keep])
            result["depths"].append(np.asarray(info["depths"][cam], dtype=np.float32).reshape(-1)[keep])
        return result

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The pipeline's output for one index."""
        results = self.pipeline(self.get_data_info(index))
        if results is None:
            raise ValueError(
                f"the pipeline rejected index {index} (a step returned None); streaming datasets keep "
                f"every frame, so use steps that do not reject samples: {self.pipeline!r}"
            )
        batch_contract.require(results, self.collect_keys, "CustomNuScenesDataset collect_keys")
        return results
