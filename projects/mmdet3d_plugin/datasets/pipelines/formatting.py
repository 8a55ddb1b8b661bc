"""Conversion of the results dict into the sample dict of ``docs/data_contract.md``.

:class:`PETRFormatBundle3D` turns arrays into tensors with the contract dtypes;
:class:`Collect3D` keeps the requested keys plus the contract's always-present fields.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...core import batch_contract as contract
from ...registry import TRANSFORMS

FLOAT64_KEYS = contract.where(dtype=torch.float64)
GT_3D_KEYS = contract.keys(contract.TARGETS_3D) + ("attr_labels",)
GT_2D_KEYS = contract.keys(contract.TARGETS_2D)
DEPTH_TARGET_KEYS = contract.keys(contract.TARGETS_DEPTH)
LABEL_KEYS = contract.where(class_labels=True, group=contract.TARGETS_3D) + contract.where(
    class_labels=True, group=contract.TARGETS_2D)
ALWAYS_COLLECTED = ("prev_exists",) + contract.keys(contract.META)
# Collected whenever present: the dataset sets it only in label-scarce training.
COLLECTED_WHEN_PRESENT = contract.keys(contract.LABELLED)
CONTRACT_KEYS = contract.keys(*contract.SAMPLE_GROUPS)
# mmdet3d img_metas entries of upstream configs that the contract has no place for.
UPSTREAM_ONLY_META = (
    "filename", "ori_shape", "scale_factor", "flip", "box_mode_3d", "box_type_3d", "img_norm_cfg",
)


def _missing_key(owner: str, key: str, available: Sequence[str]) -> KeyError:
    close = difflib.get_close_matches(key, list(available), n=3)
    hint = f"; close matches: {close}" if close else ""
    return KeyError(f"{owner}: {key!r} is not in the results{hint}; available: {sorted(available)}")


def _check_labels(key: str, labels: Any, num_classes: int) -> None:
    """Raise unless every label (an array, or a per-camera list of arrays) is in range."""
    if isinstance(labels, list):
        labels = np.concatenate([np.asarray(a).reshape(-1) for a in labels] + [np.zeros(0)])
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{key} must index class_names (0..{num_classes - 1}), got values "
            f"{sorted(set(labels.tolist()))}; add ObjectNameFilter to drop other classes"
        )


@TRANSFORMS.register_module()
class PETRFormatBundle3D:
    """Convert the sample's arrays to tensors with the contract dtypes.

    * ``img``: list of N ``(H, W, 3)`` → float32 ``(N, 3, H, W)``; ``pad_shape`` = ``(H, W)``.
    * ``collect_keys``: ``timestamp`` / ``img_timestamp`` → float64, others → float32
      (lists of N matrices become ``(N, 4, 4)``).
    * ``prev_exists`` → 0-d bool tensor, always (False when absent or None).
    * ``gt_labelled`` (label-scarce training) → 0-d bool tensor, when present.
    * GT (when ``with_gt``): ``gt_bboxes_3d`` float32 ``(M, 9)``, per camera ``gt_bboxes``
      float32 ``(Mi, 4)``, ``centers2d`` ``(Mi, 2)``, ``depths`` ``(Mi,)``; labels int64, checked
      to index ``class_names`` when ``with_label`` and removed otherwise; ``depth_maps``
      (``LoadLidarDepthMaps``) float32 ``(N, h, w)``.

    Args:
        class_names: the config's class names.
        collect_keys: the per-sample matrices and times to convert.
        with_gt: convert the GT fields present (False: remove them).
        with_label: keep and check the label fields.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        collect_keys: Sequence[str],
        with_gt: bool = True,
        with_label: bool = True,
    ) -> None:
        self.class_names = list(class_names)
        self.collect_keys = list(collect_keys)
        self.with_gt = with_gt
        self.with_label = with_label

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        imgs = np.stack([np.asarray(img, dtype=np.float32) for img in results["img"]])
        results["img"] = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
        results["pad_shape"] = tuple(int(s) for s in imgs.shape[1:3])
        results["prev_exists"] = torch.tensor(bool(results.get("prev_exists") or False))
        if "gt_labelled" in results:
            results["gt_labelled"] = torch.tensor(bool(results["gt_labelled"]))
        for key in self.collect_keys:
            if key == "prev_exists":
                continue
            if key not in results:
                raise _missing_key(type(self).__name__, key, list(results))
            dtype = np.float64 if key in FLOAT64_KEYS else np.float32
            results[key] = torch.from_numpy(np.array(results[key], dtype=dtype))
        if self.with_gt:
            self._format_gt(results)
        else:
            for key in GT_3D_KEYS + GT_2D_KEYS + DEPTH_TARGET_KEYS:
                results.pop(key, None)
        return results

    def _format_gt(self, results: dict[str, Any]) -> None:
        if not self.with_label:
            for key in LABEL_KEYS:
                results.pop(key, None)
        for key in LABEL_KEYS:
            if key in results:
                _check_labels(key, results[key], len(self.class_names))
        layouts = contract.numpy_layouts("gt_bboxes_3d", "gt_labels_3d", "attr_labels")
        for key, (dtype, shape) in layouts.items():
            if key in results:
                results[key] = torch.from_numpy(np.asarray(results[key], dtype=dtype).reshape(shape))
        for key, (dtype, _) in contract.numpy_layouts(*DEPTH_TARGET_KEYS).items():
            if key in results:
                results[key] = torch.from_numpy(np.ascontiguousarray(results[key], dtype=dtype))
        per_camera = contract.numpy_layouts(*GT_2D_KEYS)
        for key, (dtype, shape) in per_camera.items():
            if key in results:
                results[key] = [
                    torch.from_numpy(np.asarray(a, dtype=dtype).reshape(shape)) for a in results[key]
                ]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(class_names={self.class_names}, collect_keys={self.collect_keys}, "
            f"with_gt={self.with_gt}, with_label={self.with_label})"
        )


@TRANSFORMS.register_module()
class Collect3D:
    """Keep the sample's ``keys`` plus ``prev_exists``, ``img_shape``, ``pad_shape``,
    ``sample_idx`` and ``scene_token`` (always part of the contract sample), and
    ``gt_labelled`` when present (label-scarce training; configs need not list it).

    The result is flat (no ``img_metas``). ``meta_keys`` entries that are contract keys are
    kept when present; the mmdet3d ``img_metas`` names of upstream configs with no place in
    the contract (``filename``, ``ori_shape``, ``scale_factor``, ``flip``, ``box_mode_3d``,
    ``box_type_3d``, ``img_norm_cfg``) are accepted and dropped; any other name raises.

    Args:
        keys: keys that must be present and are kept.
        meta_keys: optional extra keys, see above.
    """

    def __init__(self, keys: Sequence[str], meta_keys: Sequence[str] = ()) -> None:
        if isinstance(keys, str) or isinstance(meta_keys, str):
            raise TypeError("keys and meta_keys must be lists of names, not a string")
        unknown = [k for k in meta_keys if k not in CONTRACT_KEYS + UPSTREAM_ONLY_META]
        if unknown:
            raise KeyError(
                f"Collect3D meta_keys {unknown} are neither sample keys of the data contract "
                f"{CONTRACT_KEYS} nor upstream img_metas names {UPSTREAM_ONLY_META}"
            )
        self.keys = list(dict.fromkeys(list(keys) + list(ALWAYS_COLLECTED)))
        optional = list(meta_keys) + list(COLLECTED_WHEN_PRESENT)
        self.meta_keys = [k for k in dict.fromkeys(optional) if k in CONTRACT_KEYS and k not in self.keys]

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        sample = {}
        for key in self.keys:
            if key not in results:
                raise _missing_key(type(self).__name__, key, list(results))
            sample[key] = results[key]
        for key in self.meta_keys:
            if key in results:
                sample[key] = results[key]
        return sample

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys})"
