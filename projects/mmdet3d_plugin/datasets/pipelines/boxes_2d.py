"""Per-camera 2D annotations under an image-space affine map, and upstream's occlusion filter."""
from __future__ import annotations

import numpy as np


def transform_points_2d(points: np.ndarray, ida: np.ndarray, final_dim: tuple[int, int]) -> np.ndarray:
    """Map pixel points ``(M, 2)`` through the 3x3 affine ``ida`` and clip them to the image.

    As upstream's ``_bboxes_transform`` does for ``centers2d``: ``u`` is clipped to ``[0, fW]``
    and ``v`` to ``[0, fH]`` (a projected centre outside the image lands on its border).

    Args:
        points: ``(M, 2)`` ``(u, v)`` in source pixels.
        ida: ``(3, 3)`` affine map from source to augmented pixels.
        final_dim: ``(fH, fW)`` of the augmented image.

    Returns:
        float32 ``(M, 2)``.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    f_h, f_w = final_dim
    mapped = points @ ida[:2, :2].T + ida[:2, 2]
    return mapped.clip(0.0, [f_w, f_h]).astype(np.float32)


def transform_boxes_2d(
    boxes: np.ndarray, ida: np.ndarray, final_dim: tuple[int, int], min_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Map xyxy boxes through ``ida`` and clip them to the ``(fH, fW)`` image.

    A box's image is the axis-aligned hull of its four mapped corners (exact for resize,
    crop and flip; the enclosing box under rotation).

    Args:
        boxes: ``(M, 4)`` xyxy in source pixels.
        ida: ``(3, 3)`` affine map from source to augmented pixels.
        final_dim: ``(fH, fW)`` of the augmented image.
        min_size: boxes whose clipped width or height is below it are not kept.

    Returns:
        float32 ``(M, 4)`` clipped boxes and the bool ``(M,)`` mask of those to keep.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)
    mapped = corners @ ida[:2, :2].T + ida[:2, 2]
    f_h, f_w = final_dim
    out = np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, f_w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, f_h)
    keep = ((out[:, 2] - out[:, 0]) >= min_size) & ((out[:, 3] - out[:, 1]) >= min_size)
    return out.astype(np.float32), keep


def visible_far_to_near(boxes: np.ndarray, depths: np.ndarray, final_dim: tuple[int, int]) -> np.ndarray:
    """Upstream's occlusion filter (``_filter_invisible``): which boxes survive, far to near.

    The boxes are sorted far to near (stable ``argsort(-depths)``) and their ranks painted in
    that order onto an ``(fH, fW)`` map over the whole pixels they cover (``ceil`` of the
    top-left, ``floor`` of the bottom-right corner). The map starts at 0, so unpainted pixels
    count for rank 0: the farthest box survives whenever some pixel is left unpainted or
    shows it. The survivors are the ranks left on the map, in rank order.

    Args:
        boxes: ``(K, 4)`` xyxy inside the image.
        depths: ``(K,)`` camera depth of each object.
        final_dim: ``(fH, fW)``.

    Returns:
        int64 ``(K',)`` indices into ``boxes`` of the surviving boxes, farthest first.
    """
    depths = np.asarray(depths).reshape(-1)
    if len(depths) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-depths, kind="stable")
    whole = np.concatenate([np.ceil(boxes[:, :2]), np.floor(boxes[:, 2:])], axis=1).astype(np.int64)
    rank_map = np.zeros(final_dim, dtype=np.int64)
    for rank, index in enumerate(order):
        u0, v0, u1, v1 = whole[index]
        rank_map[v0:v1, u0:u1] = rank
    return order[np.unique(rank_map)]
