"""2D boxes of 3D annotations in one camera image, as written into the temporal info files.

For each annotation of a detection class, the eight corners of its 3D box are moved into
the camera frame (with the camera's own ego pose), the corners in front of the camera
(depth > 0) are projected with the camera matrix, and the 2D box is the bounding box of the
part of their convex hull that lies inside the image ``[0, W] x [0, H]``. Boxes thinner than
one pixel, and boxes whose centre is behind the camera, are dropped. This is the rule of
StreamPETR's ``get_2d_boxes`` (and mmdet3d's), with the real image size in place of a fixed
1600x900.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Order of the 2D label indices (``labels2d``) in StreamPETR info files, and so in ours.
INFO_2D_CATEGORIES: tuple[str, ...] = (
    "car",
    "truck",
    "trailer",
    "bus",
    "construction_vehicle",
    "bicycle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "barrier",
)

# Unit-cube corners (x forward along the length, y left along the width, z up), nuScenes order.
_CORNER_SIGNS = np.array(
    [
        [1, 1, 1],
        [1, -1, 1],
        [1, -1, -1],
        [1, 1, -1],
        [-1, 1, 1],
        [-1, -1, 1],
        [-1, -1, -1],
        [-1, 1, -1],
    ],
    dtype=np.float64,
)


@dataclass
class CameraBoxes:
    """The 2D annotations of one camera image (``Mi`` boxes)."""

    bboxes2d: np.ndarray  # (Mi, 4) float32 x1, y1, x2, y2
    labels2d: np.ndarray  # (Mi,) int64 index into INFO_2D_CATEGORIES
    centers2d: np.ndarray  # (Mi, 2) float32 projected 3D centre (u, v)
    depths: np.ndarray  # (Mi,) float32 camera depth of the 3D centre


def box_corners(centers: np.ndarray, lwh: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Corners of oriented 3D boxes.

    Args:
        centers: (M, 3) box centres.
        lwh: (M, 3) length (along the heading), width, height.
        rotations: (M, 3, 3) box-to-frame rotations.

    Returns:
        (M, 8, 3) corners in the frame of ``centers``.
    """
    local = _CORNER_SIGNS[None] * (np.asarray(lwh, dtype=np.float64)[:, None, :] / 2.0)
    return np.einsum("mij,mkj->mki", rotations, local) + np.asarray(centers)[:, None, :]


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of 2D points (monotone chain); (K, 2) with K <= len(points)."""
    unique = np.unique(points, axis=0)
    if len(unique) < 3:
        return unique

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(sequence: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for point in sequence:
            while len(chain) >= 2 and cross(chain[-2], chain[-1], point) <= 0:
                chain.pop()
            chain.append(point)
        return chain

    lower, upper = half(unique), half(unique[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _clip_polygon(polygon: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip a convex polygon (K, 2) to ``[0, width] x [0, height]`` (Sutherland-Hodgman)."""
    edges = ((0, 0.0, 1.0), (0, width, -1.0), (1, 0.0, 1.0), (1, height, -1.0))
    for axis, bound, sign in edges:
        if len(polygon) == 0:
            break
        inside = sign * (polygon[:, axis] - bound) >= 0
        clipped = []
        for k in range(len(polygon)):
            current, following = polygon[k], polygon[(k + 1) % len(polygon)]
            if inside[k]:
                clipped.append(current)
            if inside[k] != inside[(k + 1) % len(polygon)]:
                t = (bound - current[axis]) / (following[axis] - current[axis])
                clipped.append(current + t * (following - current))
        polygon = np.array(clipped).reshape(-1, 2)
    return polygon


def clipped_box(corners_uv: np.ndarray, width: float, height: float) -> np.ndarray | None:
    """Bounding box of the convex hull of projected corners, intersected with the image.

    Args:
        corners_uv: (K, 2) projected corners (pixels).
        width, height: image size.

    Returns:
        (4,) x1, y1, x2, y2, or ``None`` when the hull misses the image.
    """
    if len(corners_uv) == 0:
        return None
    inside = _clip_polygon(_convex_hull(corners_uv), width, height)
    if len(inside) == 0:
        return None
    inside = np.clip(inside, 0.0, [width, height])  # interpolation round-off at the edges
    return np.concatenate([inside.min(axis=0), inside.max(axis=0)])


def project_boxes_to_camera(
    corners_cam: np.ndarray,
    centers_cam: np.ndarray,
    intrinsic: np.ndarray,
    labels: np.ndarray,
    image_size: tuple[int, int],
) -> CameraBoxes:
    """2D boxes, projected centres and depths of 3D boxes given in one camera's frame.

    Args:
        corners_cam: (M, 8, 3) box corners in the camera frame.
        centers_cam: (M, 3) box centres in the camera frame.
        intrinsic: (3, 3) camera matrix.
        labels: (M,) int64 labels (index into :data:`INFO_2D_CATEGORIES`).
        image_size: (width, height) of the image in pixels.

    Returns:
        The boxes that are visible in the image, in input order.
    """
    width, height = image_size
    boxes, kept, centers, depths = [], [], [], []
    for m in range(len(corners_cam)):
        depth = centers_cam[m, 2]
        in_front = corners_cam[m][corners_cam[m, :, 2] > 0]
        if depth <= 0 or len(in_front) == 0:
            continue
        uv = in_front @ intrinsic.T
        box = clipped_box(uv[:, :2] / uv[:, 2:3], width, height)
        if box is None or box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        center = intrinsic @ centers_cam[m]
        boxes.append(box)
        kept.append(labels[m])
        centers.append(center[:2] / center[2])
        depths.append(depth)
    return CameraBoxes(
        bboxes2d=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        labels2d=np.array(kept, dtype=np.int64).reshape(-1),
        centers2d=np.array(centers, dtype=np.float32).reshape(-1, 2),
        depths=np.array(depths, dtype=np.float32).reshape(-1),
    )
