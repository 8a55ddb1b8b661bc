"""Camera images of the generated world by true perspective projection.

* Background: sky and textured ground of :mod:`.background`.
* Objects: the camera-facing faces of every box, clipped at the near plane, projected and
  filled with PIL, farthest box first (painter's algorithm; boxes never intersect). Faces
  are shaded by a fixed sun; the front face is brighter and carries a class-specific mark,
  so the heading is visible.
* Visibility: the same polygons are drawn into an object-id buffer; the visible fraction of
  an object is its visible pixel count over the area of its unoccluded silhouette (for a
  convex box, the sum of its front-facing faces clipped to the image).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .background import CameraBackground, render_background
from .cameras import SensorCalibration
from .geometry import BACK, BOX_FACES, FACE_NORMALS, FRONT, LEFT, RIGHT, box_corners, yaw_matrix

NEAR_PLANE = 0.2
_SUN = np.array([0.35, 0.3, 0.89]) / np.linalg.norm([0.35, 0.3, 0.89])
_MARKS: dict[str, tuple[tuple[int, ...], tuple[float, float, float, float]]] = {
    "car": ((FRONT,), (0.15, 0.85, 0.55, 0.9)),
    "truck": ((FRONT,), (0.1, 0.9, 0.5, 0.9)),
    "construction_vehicle": ((FRONT,), (0.1, 0.9, 0.5, 0.9)),
    "bus": ((FRONT,), (0.1, 0.9, 0.45, 0.9)),
    "trailer": ((FRONT,), (0.1, 0.9, 0.1, 0.3)),
    "barrier": ((FRONT, BACK), (0.0, 1.0, 0.4, 0.65)),
    "motorcycle": ((FRONT,), (0.2, 0.8, 0.6, 0.95)),
    "bicycle": ((FRONT,), (0.2, 0.8, 0.6, 0.95)),
    "pedestrian": ((FRONT,), (0.25, 0.75, 0.78, 0.95)),
    "traffic_cone": ((FRONT, BACK, LEFT, RIGHT), (0.0, 1.0, 0.45, 0.65)),
}


@dataclass
class BoxSet:
    """The boxes of one keyframe, in the global frame.

    Attributes:
        center: ``(N, 3)`` geometric centres.
        lwh: ``(N, 3)`` sizes.
        yaw: ``(N,)`` headings.
        colour: ``(N, 3)`` RGB face colours.
        accent: ``(N, 3)`` RGB colours of the front mark.
        names: ``N`` detection class names.
    """

    center: np.ndarray
    lwh: np.ndarray
    yaw: np.ndarray
    colour: np.ndarray
    accent: np.ndarray
    names: list[str]


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Clip a polygon ``(K, 3)`` in camera coordinates to ``z >= NEAR_PLANE``."""
    out = []
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        a_in, b_in = a[2] >= NEAR_PLANE, b[2] >= NEAR_PLANE
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (NEAR_PLANE - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out).reshape(-1, 3)


def _clip_rect(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip a 2D polygon ``(K, 2)`` to the image rectangle."""
    for axis, bound, keep_below in ((0, 0.0, False), (0, width, True), (1, 0.0, False), (1, height, True)):
        out = []
        for i in range(len(poly)):
            a, b = poly[i], poly[(i + 1) % len(poly)]
            a_in = a[axis] <= bound if keep_below else a[axis] >= bound
            b_in = b[axis] <= bound if keep_below else b[axis] >= bound
            if a_in:
                out.append(a)
            if a_in != b_in:
                out.append(a + (bound - a[axis]) / (b[axis] - a[axis]) * (b - a))
        poly = np.asarray(out).reshape(-1, 2)
        if len(poly) == 0:
            break
    return poly


def _area(poly: np.ndarray) -> float:
    """Shoelace area of a 2D polygon ``(K, 2)``."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _face_point(quad: np.ndarray, u: float, v: float) -> np.ndarray:
    """Bilinear point of a face ``(4, 3)``: u along the bottom edge, v upwards."""
    return (1 - u) * (1 - v) * quad[0] + u * (1 - v) * quad[1] + u * v * quad[2] + (1 - u) * v * quad[3]


def _mark_quad(quad: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """The ``(4, 3)`` sub-quad of a face between ``u0..u1`` and ``v0..v1``."""
    u0, u1, v0, v1 = bounds
    return np.stack([_face_point(quad, u0, v0), _face_point(quad, u1, v0),
                     _face_point(quad, u1, v1), _face_point(quad, u0, v1)])


def _project(points: np.ndarray, intrinsic: np.ndarray) -> np.ndarray:
    """Pixels ``(K, 2)`` of camera-frame points ``(K, 3)`` in front of the camera."""
    uvw = points @ intrinsic.T
    return uvw[:, :2] / uvw[:, 2:3]


def _in_view(corners: np.ndarray, calib: SensorCalibration) -> bool:
    """Whether any part of a box with camera-frame corners ``(8, 3)`` can be in the image."""
    front = corners[:, 2] > NEAR_PLANE
    if not front.any():
        return False
    if not front.all():
        return True
    uv = _project(corners, calib.intrinsic)
    width, height = calib.image_size
    return bool(uv[:, 0].max() > 0 and uv[:, 0].min() < width and uv[:, 1].max() > 0 and uv[:, 1].min() < height)


def _face_polygon(quad: np.ndarray, calib: SensorCalibration) -> np.ndarray:
    """A camera-frame face ``(4, 3)`` clipped to the near plane and the image → pixels ``(K, 2)``."""
    clipped = _clip_near(quad)
    if len(clipped) < 3:
        return np.zeros((0, 2))
    return _clip_rect(_project(clipped, calib.intrinsic), *calib.image_size)


def _shade(normal_world: np.ndarray, face: int) -> float:
    """Brightness factor of a face from its world normal; front brighter, back darker."""
    shade = 0.7 + 0.3 * max(0.0, float(normal_world @ _SUN))
    if face == FRONT:
        shade *= 1.2
    elif face == BACK:
        shade *= 0.8
    return shade


def _world_to_camera(ego_xy: np.ndarray, ego_yaw: float, calib: SensorCalibration) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``(3, 3)`` and translation ``(3,)`` taking global points into the camera frame."""
    ego_rot = yaw_matrix(ego_yaw)
    ego_t = np.array([ego_xy[0], ego_xy[1], 0.0])
    rot = calib.rotation.T @ ego_rot.T
    return rot, -rot @ ego_t - calib.rotation.T @ calib.translation


def _box_order(boxes: BoxSet, cam_center: np.ndarray) -> np.ndarray:
    """Box indices sorted by the distance of each box's nearest point to the camera, far first."""
    local = np.einsum("nji,nj->ni", yaw_matrix(boxes.yaw), cam_center - boxes.center)
    nearest = np.clip(local, -boxes.lwh / 2.0, boxes.lwh / 2.0)
    return np.argsort(-np.linalg.norm(local - nearest, axis=-1), kind="stable")


def render_camera(
    bg: CameraBackground, calib: SensorCalibration, ego_xy: np.ndarray, ego_yaw: float, boxes: BoxSet
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one camera image and measure how much of each box it shows.

    Args:
        bg: the camera's precomputed background.
        calib: the camera's calibration.
        ego_xy: ``(2,)`` global ego position; ``ego_yaw`` its heading.
        boxes: the N boxes of the keyframe (global frame).

    Returns:
        ``image`` ``(H, W, 3)`` uint8, ``visible`` ``(N,)`` visible pixel counts and
        ``area`` ``(N,)`` unoccluded silhouette areas in pixels (within the image).
    """
    image = Image.fromarray(render_background(bg, ego_xy, ego_yaw))
    ids = Image.new("I", calib.image_size, 0)
    draw, draw_ids = ImageDraw.Draw(image), ImageDraw.Draw(ids)
    rot, trans = _world_to_camera(ego_xy, ego_yaw, calib)
    corners = box_corners(boxes.center, boxes.lwh, boxes.yaw) @ rot.T + trans
    box_rot = yaw_matrix(boxes.yaw)
    area = np.zeros(len(boxes.names))
    for n in _box_order(boxes, -rot.T @ trans):
        if not _in_view(corners[n], calib):
            continue
        normals_world = FACE_NORMALS @ box_rot[n].T
        quads = corners[n][BOX_FACES]
        facing = np.einsum("fi,fi->f", normals_world @ rot.T, quads.mean(axis=1)) < 0.0
        for face in np.flatnonzero(facing):
            poly = _face_polygon(quads[face], calib)
            if len(poly) < 3:
                continue
            points = [tuple(p) for p in poly]
            colour = boxes.colour[n] * _shade(normals_world[face], int(face))
            draw.polygon(points, fill=tuple(int(c) for c in np.clip(colour, 0, 255)))
            draw_ids.polygon(points, fill=int(n) + 1)
            area[n] += _area(poly)
            marked_faces, bounds = _MARKS[boxes.names[n]]
            if face in marked_faces:
                mark = _face_polygon(_mark_quad(quads[face], bounds), calib)
                if len(mark) >= 3:
                    draw.polygon([tuple(p) for p in mark], fill=tuple(int(c) for c in boxes.accent[n]))
    visible = np.bincount(np.asarray(ids).ravel(), minlength=len(boxes.names) + 1)[1:]
    return np.asarray(image), visible, area
