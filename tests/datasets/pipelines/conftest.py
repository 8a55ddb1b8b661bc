"""Fixtures of the pipeline tests: a hand-built two-camera rig and the generated world."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SRC_H, SRC_W = 96, 160
DISC_RADIUS = 8


def _rotation_z(angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def _lidar2cam(yaw: float) -> np.ndarray:
    """LiDAR->camera of a camera at the origin looking along LiDAR direction ``yaw``."""
    axes = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    mat = np.eye(4)
    mat[:3, :3] = axes @ _rotation_z(yaw).T
    mat[:3, 3] = [0.05, 0.3, -0.2]
    return mat


def _project(lidar2img: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hom = np.c_[points, np.ones(len(points))] @ np.asarray(lidar2img, dtype=np.float64).T
    return hom[:, :2] / hom[:, 2:3], hom[:, 2]


@pytest.fixture
def project() -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``project(lidar2img (4, 4), points (M, 3)) -> (uv (M, 2), depth (M,))``."""
    return _project


def _paint_camera(lidar2img: np.ndarray, centres: np.ndarray, colours: np.ndarray) -> dict[str, np.ndarray]:
    """Image and 2D annotations of one rig camera: a disc per visible box centre."""
    yy, xx = np.mgrid[0:SRC_H, 0:SRC_W]
    img = np.stack([60 + 0.3 * xx, 70 + 0.4 * yy, 80 + 0.2 * (xx + yy)], -1).astype(np.float32)
    uv, depth = _project(lidar2img, centres)
    inside = (uv[:, 0] > 0) & (uv[:, 0] < SRC_W) & (uv[:, 1] > 0) & (uv[:, 1] < SRC_H)
    ids = np.flatnonzero((depth > 0) & inside)
    for i in ids:
        img[(xx + 0.5 - uv[i, 0]) ** 2 + (yy + 0.5 - uv[i, 1]) ** 2 <= DISC_RADIUS ** 2] = colours[i]
    boxes = np.c_[uv[ids] - DISC_RADIUS, uv[ids] + DISC_RADIUS].clip(0, [SRC_W, SRC_H] * 2)
    return dict(img=img, gt_bboxes=boxes.astype(np.float32), gt_labels=ids.astype(np.int64),
                centers2d=uv[ids].astype(np.float32), depths=depth[ids].astype(np.float32))


def _build_rig_results() -> dict[str, Any]:
    """A results dict (as after LoadAnnotations3D) of a two-camera rig, see :func:`rig_results`."""
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = [[90.0, 0.0, 78.0], [0.0, 92.0, 50.0], [0.0, 0.0, 1.0]]
    extrinsics = [_lidar2cam(0.0), _lidar2cam(np.pi / 2)]
    centres = np.array([[10.0, 2.0, 0.5], [12.0, -3.0, -0.3], [9.0, 4.6, -1.0], [14.0, 0.2, 1.2],
                        [-2.0, 11.0, 0.4], [3.0, 10.0, -0.8], [-5.5, 12.0, 0.0]])
    colours = np.array([[230, 30, 30], [30, 220, 40], [40, 40, 230], [230, 220, 30],
                        [220, 30, 220], [30, 220, 220], [250, 140, 10]], dtype=np.float32)
    views = [_paint_camera(intrinsic @ ext, centres, colours) for ext in extrinsics]
    results: dict[str, Any] = {key: [view[key] for view in views] for key in views[0]}
    boxes_3d = np.zeros((len(centres), 9), dtype=np.float32)
    boxes_3d[:, :3] = centres
    boxes_3d[:, 3:6] = [4.0, 1.8, 1.5]
    boxes_3d[:, 6] = np.linspace(-3.0, 3.0, len(centres))
    boxes_3d[:, 7:9] = [1.0, 0.5]
    ego_pose = np.eye(4)
    ego_pose[:3, :3] = _rotation_z(0.7)
    ego_pose[:3, 3] = [100.0, -40.0, 1.8]
    results.update(
        sample_idx="token0", scene_token="scene0", timestamp=np.float64(1531883912.177012),
        prev_exists=True, img_shape=(SRC_H, SRC_W), ori_shape=(SRC_H, SRC_W),
        intrinsics=[intrinsic.copy() for _ in extrinsics], extrinsics=extrinsics,
        lidar2img=[intrinsic @ e for e in extrinsics], ego_pose=ego_pose,
        ego_pose_inv=np.linalg.inv(ego_pose), gt_bboxes_3d=boxes_3d,
        gt_labels_3d=np.arange(len(centres), dtype=np.int64),
    )
    return results


@pytest.fixture
def rig_results() -> Callable[[], dict[str, Any]]:
    """Factory of a results dict (as after LoadAnnotations3D) of a two-camera rig.

    Each 3D box is painted into the images as a disc of a distinct colour (radius 8 px)
    around its projected centre on a smooth background; the 2D annotations are the discs'
    boxes, projected centres and depths. Discs do not overlap.
    """
    return _build_rig_results


@pytest.fixture(scope="session")
def world_dataset(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> Any:
    """The train split of the generated world as a dataset without pipeline."""
    import projects.mmdet3d_plugin  # noqa: F401  (registers the dataset)
    from projects.mmdet3d_plugin.registry import DATASETS

    return DATASETS.build(
        dict(type="CustomNuScenesDataset", ann_file=str(synthetic_infos["train"]),
             data_root=str(synthetic_world), pipeline=[])
    )


def _match_objects(uv_ann: np.ndarray, depth_ann: np.ndarray, uv_obj: np.ndarray,
                   depth_obj: np.ndarray, tol_px: float) -> np.ndarray:
    """Index of the 3D object whose projection is each annotation's centre and depth."""
    ids = []
    for uv, depth in zip(np.asarray(uv_ann, dtype=np.float64), np.asarray(depth_ann, dtype=np.float64)):
        err = np.linalg.norm(uv_obj - uv, axis=1) + np.abs(depth_obj - depth) * 10
        best = int(np.argmin(err))
        # centers2d are float32: a centre just in front of the camera plane projects far
        # outside the image, where float32 spacing alone exceeds tol_px.
        limit = tol_px + 1e-5 * float(np.abs(uv).max())
        assert err[best] < limit, f"centre {uv} (depth {depth}) matches no projected box centre: {err[best]}"
        ids.append(best)
    assert len(set(ids)) == len(ids), "two annotations of one camera matched the same box"
    return np.asarray(ids, dtype=np.int64)


def _expected_boxes(boxes: np.ndarray, ida: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference of the 2D box mapping: hull of mapped corners, clip, min size 2."""
    out, keep = [], []
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64):
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]]) @ ida.T
        lo = corners[:, :2].min(0).clip(0, [hw[1], hw[0]])
        hi = corners[:, :2].max(0).clip(0, [hw[1], hw[0]])
        out.append(np.r_[lo, hi])
        keep.append(bool((hi - lo >= 2.0).all()))
    return np.array(out).reshape(-1, 4), np.array(keep, dtype=bool)


def _unoccluded(ann_boxes: np.ndarray, depths: np.ndarray, k: int, uv: np.ndarray) -> bool:
    """No nearer annotation's 2D box contains ``uv``."""
    inside = ((ann_boxes[:, 0] <= uv[0]) & (uv[0] <= ann_boxes[:, 2])
              & (ann_boxes[:, 1] <= uv[1]) & (uv[1] <= ann_boxes[:, 3]))
    return not (inside & (depths < depths[k])).any()


def _colour_matches(before_img: np.ndarray, after_img: np.ndarray, uv_b: np.ndarray,
                    uv_a: np.ndarray, radius: int, tol: float) -> bool | None:
    """Whether the augmented pixel at ``uv_a`` has the colour of the source around ``uv_b``.

    ``None`` when the source is not uniform around ``uv_b`` (an edge: not comparable) or a
    point lies outside its image.
    """
    h, w = before_img.shape[:2]
    col, row = int(np.floor(uv_b[0])), int(np.floor(uv_b[1]))
    if not (radius <= col < w - radius and radius <= row < h - radius):
        return None
    patch = before_img[row - radius:row + radius + 1, col - radius:col + radius + 1].reshape(-1, 3)
    if patch.std(axis=0).max() > 4.0:
        return None
    ha, wa = after_img.shape[:2]
    col_a, row_a = int(np.floor(uv_a[0])), int(np.floor(uv_a[1]))
    if not (1 <= col_a < wa - 1 and 1 <= row_a < ha - 1):
        return None
    return bool(np.abs(after_img[row_a, col_a] - patch.mean(axis=0)).max() <= tol)


@pytest.fixture
def check_augmented_sample(project: Callable) -> Callable[..., int]:
    """``check(before, after, radius, boxes_2d_exact=True) -> number of colour-checked objects``.

    For every camera: ``extrinsics`` unchanged and ``lidar2img == intrinsics @ extrinsics @
    A^-1`` with ``A^-1 = inv(ego_pose_before) @ ego_pose_after`` (identity without BEV
    augmentation; upstream leaves the extrinsics to the rig); every annotation before and
    after is the projection (centre and depth) of a 3D box with the matching matrix (after:
    clipped to the image); the
    kept annotations, their labels and 2D boxes are those an independent reference mapping
    (``ida = K_after @ inv(K_before)``) predicts; unoccluded objects have the same colour at
    their projected centre before and after (where the source is locally uniform).
    """

    def check(before: dict[str, Any], after: dict[str, Any], radius: int, boxes_2d_exact: bool = True,
              tol: float = 20.0) -> int:
        boxes_b = np.asarray(before["gt_bboxes_3d"], dtype=np.float64)
        boxes_a = np.asarray(after["gt_bboxes_3d"], dtype=np.float64)
        checked = 0
        bev_inv = np.linalg.inv(before["ego_pose"]) @ np.asarray(after["ego_pose"], dtype=np.float64)
        for cam in range(len(before["img"])):
            l2i_a = np.asarray(after["lidar2img"][cam], dtype=np.float64)
            np.testing.assert_array_equal(after["extrinsics"][cam], before["extrinsics"][cam])
            np.testing.assert_allclose(
                l2i_a, np.asarray(after["intrinsics"][cam]) @ np.asarray(after["extrinsics"][cam]) @ bev_inv,
                rtol=1e-6, atol=1e-6)
            uv_b, d_b = project(before["lidar2img"][cam], boxes_b[:, :3])
            uv_a, d_a = project(l2i_a, boxes_a[:, :3])
            ids_b = _match_objects(before["centers2d"][cam], before["depths"][cam], uv_b, d_b, 1e-2)
            hw = after["img"][cam].shape[:2]
            # augmented centres are clipped to the image (upstream), their projections are not
            uv_a_clipped = uv_a.clip(0.0, [hw[1], hw[0]])
            ids_a = _match_objects(after["centers2d"][cam], after["depths"][cam], uv_a_clipped, d_a, 1e-2)
            ida = np.asarray(after["intrinsics"][cam])[:3, :3] @ np.linalg.inv(
                np.asarray(before["intrinsics"][cam])[:3, :3])
            expected, keep = _expected_boxes(before["gt_bboxes"][cam], ida, hw)
            if boxes_2d_exact:  # the same objects; the occlusion filter orders them far to near
                np.testing.assert_array_equal(np.sort(ids_a), np.sort(ids_b[keep]))
            assert set(ids_a) <= set(ids_b[keep])
            for j, obj in enumerate(ids_a):
                k = int(np.flatnonzero(ids_b == obj)[0])
                assert after["gt_labels"][cam][j] == before["gt_labels"][cam][k]
                np.testing.assert_allclose(after["gt_bboxes"][cam][j], expected[k], atol=1e-3)
                if not _unoccluded(np.asarray(before["gt_bboxes"][cam]), np.asarray(before["depths"][cam]),
                                   k, uv_b[obj]):
                    continue
                match = _colour_matches(before["img"][cam], after["img"][cam], uv_b[obj], uv_a[obj],
                                        radius, tol)
                if match is not None:
                    assert match, f"camera {cam}, object {obj}: colour at projected centre changed"
                    checked += 1
        return checked

    return check
