"""What the teacher sees of a batch.

The teacher runs in ``predict`` mode on the student's batch without its ground truth. With
``teacher_input_size=(H_t, W_t)`` its images are resized (bilinear) and everything that
refers to pixels follows: ``lidar2img`` and ``intrinsics`` are left-multiplied by
``diag(W_t / W, H_t / H, 1, 1)`` (so ``[u·d, v·d, d, 1] = lidar2img @ [x, y, z, 1]`` still
holds for the resized pixels, docs/data_contract.md), and ``img_shape`` / ``pad_shape`` are
scaled. (What the student gets back, the teacher's pseudo labels, is
:class:`~..losses.pseudo_labels.PseudoLabeler`'s.)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ...core import batch_contract

#: Batch keys that carry ground truth (boxes, LiDAR depth); the teacher never sees them.
GT_KEYS = batch_contract.keys(
    batch_contract.TARGETS_3D, batch_contract.TARGETS_2D, batch_contract.TARGETS_DEPTH)
#: Camera matrices whose rows 0 and 1 are in pixels.
PIXEL_MATRIX_KEYS = ("lidar2img", "intrinsics")


def check_input_size(value: Optional[Sequence[int]]) -> Optional[tuple[int, int]]:
    """``None`` or ``teacher_input_size`` as a pair of positive ints ``(H, W)``."""
    if value is None:
        return None
    if len(value) != 2 or any(int(v) != v or int(v) <= 0 for v in value):
        raise ValueError(f"teacher_input_size must be None or (H, W) positive ints, got {value!r}")
    return int(value[0]), int(value[1])


def pixel_scale_matrix(scale_x: float, scale_y: float, like: Tensor) -> Tensor:
    """``diag(scale_x, scale_y, 1, 1)`` ``(4, 4)`` with the dtype / device of ``like``."""
    return torch.diag(torch.tensor([scale_x, scale_y, 1.0, 1.0], dtype=like.dtype, device=like.device))


def _scaled_shapes(shapes: Sequence[Sequence[int]], scale_x: float, scale_y: float) -> list[tuple[int, int]]:
    return [(int(round(h * scale_y)), int(round(w * scale_x))) for h, w in shapes]


def teacher_batch(batch: Mapping[str, Any], size: Optional[tuple[int, int]]) -> dict[str, Any]:
    """The teacher's view of ``batch``: no ground truth; resized to ``size`` when given.

    Args:
        batch: a collated batch; ``img`` is ``(B, N, 3, H, W)`` (padded).
        size: ``(H_t, W_t)`` or None (same images).

    Returns:
        A new dict (the input is not modified) with ``img`` ``(B, N, 3, H_t, W_t)``,
        ``lidar2img`` / ``intrinsics`` ``(B, N, 4, 4)`` rescaled and ``img_shape`` /
        ``pad_shape`` scaled.
    """
    out = {key: value for key, value in batch.items() if key not in GT_KEYS}
    img = batch["img"]
    if size is None or tuple(img.shape[-2:]) == size:
        return out
    height, width = img.shape[-2:]
    scale_y, scale_x = size[0] / height, size[1] / width
    resized = F.interpolate(img.flatten(0, 1), size=size, mode="bilinear", align_corners=False)
    out["img"] = resized.reshape(*img.shape[:-2], *size)
    for key in PIXEL_MATRIX_KEYS:
        if key in batch:
            out[key] = pixel_scale_matrix(scale_x, scale_y, batch[key]) @ batch[key]
    if "img_shape" in batch:
        out["img_shape"] = _scaled_shapes(batch["img_shape"], scale_x, scale_y)
    if "pad_shape" in batch:
        out["pad_shape"] = [tuple(size)] * len(batch["pad_shape"])
    return out
