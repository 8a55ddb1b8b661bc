"""Collation of samples into a batch, as ``docs/data_contract.md`` describes it.

* Fixed-shape tensors (``img``, ``lidar2img``, ``intrinsics``, ``extrinsics``, ``ego_pose``,
  ``ego_pose_inv``, ``timestamp``, ``prev_exists``, ``gt_labelled``, ``depth_maps``, and any other tensor or
  array key) are stacked with a leading batch dimension B; ``timestamp`` stays float64 and
  ``prev_exists`` / ``gt_labelled`` bool, also when a sample holds them as plain Python values.
* Variable-length ground truth (``gt_bboxes_3d``, ``gt_labels_3d``, ``gt_names``,
  ``attr_labels``, and the per-camera ``gt_bboxes``, ``gt_labels``, ``centers2d``,
  ``depths``) and every non-tensor value (strings, shapes, lists) become lists of length B.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..core import batch_contract as contract

VARIABLE_KEYS: frozenset[str] = frozenset(
    contract.where(layout=contract.OBJECTS) + contract.where(layout=contract.CAMERA_OBJECTS))
SCALAR_DTYPES: dict[str, torch.dtype] = {
    key.name: key.dtype for key in contract.BATCH_KEYS if key.layout == contract.STACKED and key.shape == ()}

def _stack(key: str, values: list[Any]) -> torch.Tensor:
    """Stack the per-sample values of one fixed-shape key into (B, ...)."""
    dtype = SCALAR_DTYPES.get(key)
    tensors = [torch.as_tensor(value, dtype=dtype) for value in values]
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(
            f"cannot stack {key!r}: the samples have shapes {sorted(shapes)}; fixed-shape keys must agree "
            f"(pad the images with PadMultiViewImage, or make {key!r} a variable-length key)"
        )
    return torch.stack(tensors)


def _is_fixed_shape(key: str, value: Any) -> bool:
    """Whether a key is stacked: a tensor / array / known scalar that is not variable-length."""
    if key in VARIABLE_KEYS:
        return False
    return key in SCALAR_DTYPES or isinstance(value, (torch.Tensor, np.ndarray))


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate B pipeline samples into one batch.

    Args:
        samples: B sample dicts with the same keys (see the data contract).

    Returns:
        batch dict: e.g. ``img`` (B, N, 3, H, W), ``lidar2img`` (B, N, 4, 4), ``ego_pose``
        (B, 4, 4), ``timestamp`` (B,) float64, ``prev_exists`` (B,) bool (and ``gt_labelled`` (B,)
        bool in label-scarce training, ``depth_maps`` (B, N, h, w) float32 with LiDAR depth
        supervision); ``gt_bboxes_3d`` a list
        of B (M_b, 9); ``gt_bboxes`` a list of B lists of N (M_bn, 4); ``sample_idx`` a list of B.
    """
    if len(samples) == 0:
        raise ValueError("collate_samples needs at least one sample, got an empty list")
    keys = list(samples[0])
    for b, sample in enumerate(samples[1:], start=1):
        if set(sample) != set(keys):
            raise KeyError(
                f"sample {b} has keys {sorted(sample)} but sample 0 has {sorted(keys)}; "
                f"differences: {sorted(set(sample) ^ set(keys))}"
            )
    batch: dict[str, Any] = {}
    for key in keys:
        values = [sample[key] for sample in samples]
        batch[key] = _stack(key, values) if _is_fixed_shape(key, values[0]) else values
    return batch
