"""Loading steps: the multi-view images and the annotation fields of a sample.

Upstream (mmdet3d / mmcv) loads images in **BGR** channel order and
``NormalizeMultiviewImage(to_rgb=True)`` swaps them to RGB before the published
``mean``/``std`` (RGB order) are applied. :class:`LoadMultiViewImageFromFiles` keeps that
convention so that StreamPETR / RayDN ``img_norm_cfg`` values work unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...core import batch_contract as contract
from ...core.bbox.box_layout import BOX_DIM
from ...registry import TRANSFORMS

_COLOR_TYPES = ("unchanged", "color")


def read_bgr_image(path: str | Path, color_type: str = "unchanged") -> np.ndarray:
    """Read one image file as a uint8 BGR array ``(H, W, 3)``.

    ``color_type='color'`` converts any image mode to 3 channels; ``'unchanged'`` requires
    the file to be 3-channel RGB already (as every nuScenes camera image is).

    Raises:
        FileNotFoundError: no such file.
        OSError: the file does not decode (truncated, corrupt, not an image); names the path.
        ValueError: ``color_type='unchanged'`` and the image is not RGB.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"camera image not found: {path}")
    try:
        with Image.open(path) as pil:
            if pil.mode != "RGB" and color_type == "unchanged":
                raise ValueError(
                    f"image {path} has mode {pil.mode!r}; the pipeline needs 3-channel RGB "
                    "images (use color_type='color' to convert)"
                )
            rgb = np.asarray(pil.convert("RGB") if pil.mode != "RGB" else pil)
    except (OSError, SyntaxError) as err:  # PIL: truncated / corrupt data, not an image
        raise OSError(
            f"cannot decode camera image {path} ({path.stat().st_size} bytes): {err}; "
            "the file is truncated or corrupt (re-extract or re-download it)"
        ) from err
    return np.ascontiguousarray(rgb[..., ::-1])


@TRANSFORMS.register_module()
class LoadMultiViewImageFromFiles:
    """Read the N camera images named by ``results['img_filename']``.

    Adds ``img`` (list of N arrays ``(H, W, 3)``, BGR, uint8 or float32), ``filename``,
    ``img_shape`` and ``ori_shape`` (both ``(H, W)``). All cameras must share one size.

    Args:
        to_float32: convert the images to float32 (values stay in [0, 255]).
        color_type: ``'unchanged'`` (mmcv's default in mmdet3d) or ``'color'``.
    """

    def __init__(self, to_float32: bool = False, color_type: str = "unchanged") -> None:
        if color_type not in _COLOR_TYPES:
            raise ValueError(f"color_type must be one of {_COLOR_TYPES}, got {color_type!r}")
        self.to_float32 = to_float32
        self.color_type = color_type

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "img_filename" not in results:
            raise KeyError("LoadMultiViewImageFromFiles needs 'img_filename' (list of N image paths)")
        paths = [str(p) for p in results["img_filename"]]
        imgs = [read_bgr_image(p, self.color_type) for p in paths]
        shape = imgs[0].shape[:2]
        for path, img in zip(paths, imgs):
            if img.shape[:2] != shape:
                raise ValueError(
                    f"all camera images must have one size; {path} is {img.shape[:2]}, "
                    f"{paths[0]} is {shape}"
                )
        if self.to_float32:
            imgs = [img.astype(np.float32) for img in imgs]
        results["img"] = imgs
        results["filename"] = paths
        results["img_shape"] = tuple(int(s) for s in shape)
        results["ori_shape"] = results["img_shape"]
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(to_float32={self.to_float32}, color_type={self.color_type!r})"


def _check_per_camera_lengths(results: dict[str, Any], keys: list[str]) -> None:
    """Raise when the per-camera annotation lists disagree in cameras or objects."""
    present = [k for k in keys if k in results]
    if not present:
        return
    num_cams = {k: len(results[k]) for k in present}
    if len(set(num_cams.values())) != 1:
        raise ValueError(f"per-camera annotation lists disagree in length: {num_cams}")
    for cam in range(len(results[present[0]])):
        counts = {k: len(results[k][cam]) for k in present}
        if len(set(counts.values())) != 1:
            raise ValueError(f"camera {cam}: per-object annotation counts disagree: {counts}")


@TRANSFORMS.register_module()
class LoadAnnotations3D:
    """Select the annotation fields of a sample and give them their contract dtypes.

    ``CustomNuScenesDataset.get_data_info`` already puts every annotation in the results;
    this step keeps the requested ones (``KeyError`` when one is missing), converts them
    (``gt_bboxes_3d`` float32 ``(M, 9)``, ``gt_labels_3d`` / ``attr_labels`` int64 ``(M,)``,
    per camera ``gt_bboxes`` float32 ``(Mi, 4)``, ``gt_labels`` int64 ``(Mi,)``, ``centers2d``
    float32 ``(Mi, 2)``, ``depths`` float32 ``(Mi,)``) and removes the ones not requested.

    Args:
        with_bbox_3d: keep ``gt_bboxes_3d``.
        with_label_3d: keep ``gt_labels_3d``.
        with_bbox: keep the per-camera 2D boxes ``gt_bboxes``.
        with_label: keep the per-camera 2D labels ``gt_labels``.
        with_bbox_depth: keep the per-camera ``centers2d`` and ``depths``.
        with_attr_label: keep ``attr_labels``.
    """

    def __init__(
        self,
        with_bbox_3d: bool = True,
        with_label_3d: bool = True,
        with_bbox: bool = False,
        with_label: bool = False,
        with_bbox_depth: bool = False,
        with_attr_label: bool = False,
    ) -> None:
        self.fields: dict[str, bool] = {
            "gt_bboxes_3d": with_bbox_3d,
            "gt_labels_3d": with_label_3d,
            "attr_labels": with_attr_label,
            "gt_bboxes": with_bbox,
            "gt_labels": with_label,
            "centers2d": with_bbox_depth,
            "depths": with_bbox_depth,
        }

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for key, wanted in self.fields.items():
            if not wanted:
                results.pop(key, None)
            elif key not in results:
                raise KeyError(
                    f"{type(self).__name__} needs {key!r} in the results; got {sorted(results)}"
                )
        self._convert_3d(results)
        self._convert_2d(results)
        return results

    @staticmethod
    def _convert_3d(results: dict[str, Any]) -> None:
        if "gt_bboxes_3d" in results:
            boxes = np.asarray(results["gt_bboxes_3d"], dtype=np.float32).reshape(-1, BOX_DIM)
            results["gt_bboxes_3d"] = boxes
        for key in ("gt_labels_3d", "attr_labels"):
            if key in results:
                results[key] = np.asarray(results[key], dtype=np.int64).reshape(-1)
        keys = ("gt_bboxes_3d", "gt_labels_3d", "attr_labels")
        lengths = {k: len(results[k]) for k in keys if k in results}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"3D annotation fields disagree in number of objects: {lengths}")

    @staticmethod
    def _convert_2d(results: dict[str, Any]) -> None:
        layouts = contract.numpy_layouts(*contract.keys(contract.TARGETS_2D))
        for key, (dtype, shape) in layouts.items():
            if key in results:
                results[key] = [np.asarray(a, dtype=dtype).reshape(shape) for a in results[key]]
        _check_per_camera_lengths(results, list(layouts))

    def __repr__(self) -> str:
        kept = [k for k, wanted in self.fields.items() if wanted]
        return f"{type(self).__name__}(fields={kept})"
