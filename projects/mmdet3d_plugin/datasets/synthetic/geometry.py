"""Small rigid-body helpers of the generated world: yaw rotations, quaternions, box corners.

The world is flat (ground plane ``z = 0`` in the global frame) and every pose that the
generator makes has roll and pitch 0, so most transforms are a yaw plus a translation.
Quaternions follow nuScenes: ``(w, x, y, z)``.
"""
from __future__ import annotations

import numpy as np

# Box corner signs in the box frame (x along the length, y along the width, z up):
# corners 0-3 are the bottom face, 4-7 the top face, counter-clockwise seen from above,
# starting at the front-left corner.
_CORNER_SIGNS = np.array(
    [
        [1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1],
        [1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1],
    ],
    dtype=np.float64,
)

# The six faces as corner indices, each counter-clockwise seen from outside the box, and
# the face's outward normal in the box frame.
BOX_FACES = np.array(
    [
        [0, 3, 7, 4],  # front (+x)
        [2, 1, 5, 6],  # back (-x)
        [1, 0, 4, 5],  # left (+y)
        [3, 2, 6, 7],  # right (-y)
        [4, 7, 6, 5],  # top (+z)
        [0, 1, 2, 3],  # bottom (-z)
    ],
    dtype=np.int64,
)
FACE_NORMALS = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64
)
FRONT, BACK, LEFT, RIGHT, TOP, BOTTOM = range(6)


def yaw_matrix(yaw: np.ndarray | float) -> np.ndarray:
    """Rotation matrices about +z.

    Args:
        yaw: angles in radians, shape ``(...)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.zeros(yaw.shape + (3, 3))
    out[..., 0, 0], out[..., 0, 1] = c, -s
    out[..., 1, 0], out[..., 1, 1] = s, c
    out[..., 2, 2] = 1.0
    return out


def yaw_quaternion(yaw: float) -> list[float]:
    """The nuScenes quaternion ``[w, x, y, z]`` of a rotation by ``yaw`` about +z."""
    return [float(np.cos(yaw / 2.0)), 0.0, 0.0, float(np.sin(yaw / 2.0))]


def matrix_quaternion(rotation: np.ndarray) -> list[float]:
    """The quaternion ``[w, x, y, z]`` (w >= 0) of a ``(3, 3)`` rotation matrix."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(r)
    if trace > 0.0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (r[k, j] - r[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + k] = (r[k, i] + r[i, k]) / s
    q = np.asarray(q) / np.linalg.norm(q)
    if q[0] < 0.0:
        q = -q
    return [float(v) for v in q]


def box_corners(center: np.ndarray, lwh: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Corners of yaw-rotated boxes, in the order documented by ``_CORNER_SIGNS``.

    Args:
        center: ``(N, 3)`` geometric centres.
        lwh: ``(N, 3)`` length, width, height.
        yaw: ``(N,)`` headings about +z.

    Returns:
        ``(N, 8, 3)`` corners in the frame of ``center``.
    """
    local = _CORNER_SIGNS[None] * (np.asarray(lwh, dtype=np.float64)[:, None, :] / 2.0)
    rot = yaw_matrix(yaw)
    return np.einsum("nij,nkj->nki", rot, local) + np.asarray(center, dtype=np.float64)[:, None, :]


def footprints(xy: np.ndarray, lw: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Ground rectangles of boxes.

    Args:
        xy: ``(..., 2)`` centres.
        lw: ``(..., 2)`` length and width.
        yaw: ``(...)`` headings.

    Returns:
        ``(..., 4, 2)`` rectangle corners, counter-clockwise.
    """
    signs = _CORNER_SIGNS[:4, :2]
    local = signs * (np.asarray(lw)[..., None, :] / 2.0)
    c, s = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return np.stack([x, y], axis=-1) + np.asarray(xy)[..., None, :]


def rectangles_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether convex quadrilaterals overlap (separating-axis test), broadcast over leading dims.

    Args:
        a: ``(..., 4, 2)`` rectangle corners.
        b: ``(..., 4, 2)`` rectangle corners.

    Returns:
        ``(...)`` bool, True where the rectangles share interior points.
    """
    a, b = np.broadcast_arrays(a, b)
    separated = np.zeros(a.shape[:-2], dtype=bool)
    for poly in (a, b):
        for k in range(2):
            edge = poly[..., k + 1, :] - poly[..., k, :]
            axis = np.stack([-edge[..., 1], edge[..., 0]], axis=-1)[..., None, :]
            pa = np.sum(a * axis, axis=-1)
            pb = np.sum(b * axis, axis=-1)
            separated |= (pa.max(-1) <= pb.min(-1)) | (pb.max(-1) <= pa.min(-1))
    return ~separated
