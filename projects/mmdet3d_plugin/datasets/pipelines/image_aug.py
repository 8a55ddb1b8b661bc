"""Image-space augmentation of the N camera images: resize, crop, flip and rotation.

Pixel convention: continuous pixel coordinates with the top-left *corner* of the image at
``(0, 0)``; pixel ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)``. A horizontal flip
of a ``W``-wide image therefore maps ``u -> W - u`` (column ``j`` -> ``W - 1 - j``), which is
the convention of upstream's matrices and 2D boxes. Every geometric step is one 3x3 affine
matrix ``ida`` on homogeneous pixels; the intrinsics become ``ida @ K`` and
``lidar2img = intrinsics @ extrinsics``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ...core import batch_contract as contract
from . import sampling
from .boxes_2d import (
    transform_boxes_2d,
    transform_points_2d,
    visible_far_to_near,
)
from ...registry import TRANSFORMS

AUG_CONF_KEYS = ("resize_lim", "final_dim", "bot_pct_lim", "rot_lim", "H", "W", "rand_flip")
PER_CAMERA_2D_KEYS = contract.keys(contract.TARGETS_2D)


@dataclass(frozen=True)
class ImageAugParams:
    """One draw of the image augmentation, shared by all cameras of a sample.

    ``resize`` is the drawn scale factor and ``resize_dims`` the ``(width, height)`` of the
    resized image, ``(int(W * resize), int(H * resize))``; the matrices, 2D boxes and centres
    are scaled by ``resize`` itself, as upstream does, so they may differ from the image by the
    truncation (under one pixel at the far border). ``crop`` is the box
    ``(x0, y0, x1, y1)`` cut from it (may reach outside it: zero padding), ``rotate`` the
    rotation in degrees, counter-clockwise as displayed, about the crop's centre.
    """

    resize: float
    resize_dims: tuple[int, int]
    crop: tuple[int, int, int, int]
    flip: bool
    rotate: float


def ida_matrix(params: ImageAugParams) -> np.ndarray:
    """The 3x3 float64 affine map from source pixels to augmented pixels (corner convention).

    Scales both axes by ``params.resize`` (upstream's ``ida_rot *= resize``), then crops,
    flips and rotates.
    """
    x0, y0, x1, y1 = params.crop
    mat = np.diag([params.resize, params.resize, 1.0])
    mat = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ mat
    if params.flip:
        mat = np.array([[-1.0, 0.0, x1 - x0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ mat
    return _rotation_matrix(params.rotate, x1 - x0, y1 - y0) @ mat


def _rotation_matrix(degrees: float, width: int, height: int) -> np.ndarray:
    """3x3 rotation about the image centre, counter-clockwise as displayed (y points down)."""
    rad = np.deg2rad(degrees)
    cos, sin = np.cos(rad), np.sin(rad)
    rot = np.array([[cos, sin], [-sin, cos]])
    centre = np.array([width / 2.0, height / 2.0])
    mat = np.eye(3)
    mat[:2, :2] = rot
    mat[:2, 2] = centre - rot @ centre
    return mat


def augment_image(img: np.ndarray, params: ImageAugParams) -> np.ndarray:
    """Resize (bicubic), crop, flip and rotate (bilinear) one image.

    Args:
        img: ``(H, W, 3)`` uint8, or float with values in [0, 255].

    Returns:
        float32 ``(fH, fW, 3)`` with ``(fW, fH)`` the crop size.
    """
    if img.dtype != np.uint8:
        if img.size and (img.min() < 0 or img.max() > 255):
            raise ValueError(
                "ResizeCropFlipRotImage expects images with values in [0, 255]; put it before "
                "NormalizeMultiviewImage"
            )
        img = np.rint(img).astype(np.uint8)
    x0, y0, x1, y1 = params.crop
    pil = Image.fromarray(img).resize(params.resize_dims, Image.Resampling.BICUBIC)
    pil = pil.crop(params.crop)
    if params.flip:
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if params.rotate != 0.0:
        inverse = np.linalg.inv(_rotation_matrix(params.rotate, x1 - x0, y1 - y0))
        pil = pil.transform(
            (x1 - x0, y1 - y0),
            Image.Transform.AFFINE,
            data=tuple(inverse[:2].ravel()),
            resample=Image.Resampling.BILINEAR,
        )
    return np.asarray(pil, dtype=np.float32)


@TRANSFORMS.register_module()
class ResizeCropFlipRotImage:
    """Per-sample image augmentation of all N cameras with one shared draw.

    Training: resize factor ``r ~ U(resize_lim)`` of the source size, a crop of ``final_dim``
    whose bottom edge sits ``U(bot_pct_lim)`` of the resized height above the image bottom
    (``(0, 0)``: bottom crop) at a random horizontal offset, a flip with probability 1/2 when
    ``rand_flip``, and a rotation ``~ U(rot_lim)`` degrees. Test: ``r = max(fH / H, fW / W)``,
    bottom crop at ``mean(bot_pct_lim)``, horizontally centred, no flip, no rotation. The
    image is resized to ``(int(W r), int(H r))`` while matrices and annotations scale by ``r``.

    Updates ``img`` (float32 ``(fH, fW, 3)`` each), ``img_shape``, ``intrinsics``, ``lidar2img``
    and, when present, the per-camera 2D annotations: boxes are mapped, clipped to the image
    and dropped (with their labels, centres and depths) when narrower or lower than 2 px or,
    with ``filter_invisible``, hidden behind nearer boxes by upstream's rule (see
    :func:`visible_far_to_near`; the survivors come out farthest first). ``centers2d`` are
    the mapped projections clipped to ``[0, fW] x [0, fH]``, as upstream.

    Args:
        data_aug_conf: dict with ``resize_lim``, ``final_dim`` ``(fH, fW)``, ``bot_pct_lim``,
            ``rot_lim`` (degrees), ``H`` and ``W`` (the source image size; the loaded images
            must have it) and ``rand_flip``.
        with_2d: transform the per-camera 2D annotations; when False they are removed.
        filter_invisible: drop 2D boxes whose whole pixels are all covered by nearer ones
            (the farthest box is kept where some pixel is uncovered) and order the rest far
            to near, as upstream.
        training: random (True) or deterministic test-time (False) augmentation.
    """

    min_size = 2.0

    def __init__(
        self,
        data_aug_conf: Mapping[str, Any],
        with_2d: bool = True,
        filter_invisible: bool = True,
        training: bool = True,
    ) -> None:
        missing = [k for k in AUG_CONF_KEYS if k not in data_aug_conf]
        unknown = [k for k in data_aug_conf if k not in AUG_CONF_KEYS]
        if missing or unknown:
            raise KeyError(
                f"data_aug_conf needs exactly the keys {AUG_CONF_KEYS}; "
                f"missing {missing}, unknown {unknown}"
            )
        self.data_aug_conf = dict(data_aug_conf)
        self.final_dim = tuple(int(v) for v in data_aug_conf["final_dim"])
        self.with_2d = with_2d
        self.filter_invisible = filter_invisible
        self.training = training

    def sample_augmentation(self) -> ImageAugParams:
        """Draw the augmentation (deterministic when not training)."""
        conf = self.data_aug_conf
        src_h, src_w = conf["H"], conf["W"]
        f_h, f_w = self.final_dim
        if self.training:
            resize = sampling.uniform(*conf["resize_lim"])
            bot_pct = sampling.uniform(*conf["bot_pct_lim"])
        else:
            resize = max(f_h / src_h, f_w / src_w)
            bot_pct = float(np.mean(conf["bot_pct_lim"]))
        # The epsilon keeps e.g. 400 * (176 / 400) from truncating to 175.
        new_w, new_h = int(src_w * resize + 1e-6), int(src_h * resize + 1e-6)
        crop_h = int((1 - bot_pct) * new_h) - f_h
        if self.training:
            crop_w = int(sampling.uniform(0, max(0, new_w - f_w)))
            flip = bool(conf["rand_flip"]) and sampling.coin()
            rotate = sampling.uniform(*conf["rot_lim"])
        else:
            crop_w = int(max(0, new_w - f_w) / 2)
            flip, rotate = False, 0.0
        crop = (crop_w, crop_h, crop_w + f_w, crop_h + f_h)
        return ImageAugParams(resize, (new_w, new_h), crop, flip, rotate)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        src_hw = (int(self.data_aug_conf["H"]), int(self.data_aug_conf["W"]))
        if tuple(results["img_shape"]) != src_hw:
            raise ValueError(
                f"loaded images are {tuple(results['img_shape'])} (H, W) but data_aug_conf "
                f"describes H={src_hw[0]}, W={src_hw[1]}; set H and W to the source image size"
            )
        params = self.sample_augmentation()
        ida = ida_matrix(params)
        results["img"] = [augment_image(img, params) for img in results["img"]]
        intrinsics = [np.array(k, dtype=np.float64) for k in results["intrinsics"]]
        for k in intrinsics:
            k[:3, :3] = ida @ k[:3, :3]
        results["intrinsics"] = intrinsics
        results["lidar2img"] = [
            k @ np.asarray(e, dtype=np.float64) for k, e in zip(intrinsics, results["extrinsics"])
        ]
        results["img_shape"] = self.final_dim
        if self.with_2d:
            self._transform_annotations(results, ida)
        else:
            for key in PER_CAMERA_2D_KEYS:
                results.pop(key, None)
        return results

    def _transform_annotations(self, results: dict[str, Any], ida: np.ndarray) -> None:
        """Map, clip and filter the per-camera 2D annotations present in ``results``.

        New lists and arrays are built: the inputs may be shared with the dataset's infos.
        """
        present = [k for k in PER_CAMERA_2D_KEYS if k in results]
        if not present:
            return
        if "gt_bboxes" not in results:
            raise KeyError(
                f"2D annotations {present} need 'gt_bboxes' to be augmented; load them with "
                "LoadAnnotations3D(with_bbox=True) or use ResizeCropFlipRotImage(with_2d=False)"
            )
        out: dict[str, list[np.ndarray]] = {key: [] for key in present}
        for cam, boxes in enumerate(results["gt_bboxes"]):
            boxes, keep = transform_boxes_2d(boxes, ida, self.final_dim, self.min_size)
            index = np.flatnonzero(keep)
            if self.filter_invisible and "depths" in results:
                depths = np.asarray(results["depths"][cam])[index]
                index = index[visible_far_to_near(boxes[index], depths, self.final_dim)]
            for key in present:
                values = boxes if key == "gt_bboxes" else np.asarray(results[key][cam])
                if key == "centers2d":
                    values = transform_points_2d(values, ida, self.final_dim)
                out[key].append(values[index])
        results.update(out)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_aug_conf={self.data_aug_conf}, with_2d={self.with_2d}, "
            f"filter_invisible={self.filter_invisible}, training={self.training})"
        )
