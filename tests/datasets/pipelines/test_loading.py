"""LoadMultiViewImageFromFiles and LoadAnnotations3D."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from projects.mmdet3d_plugin.datasets.pipelines.loading import LoadAnnotations3D, LoadMultiViewImageFromFiles


def _write_images(folder: Path, sizes: list[tuple[int, int]]) -> list[str]:
    paths = []
    for i, (w, h) in enumerate(sizes):
        rgb = np.zeros((h, w, 3), dtype=np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100 + i, 10
        path = folder / f"cam{i}.png"
        Image.fromarray(rgb).save(path)
        paths.append(str(path))
    return paths


def test_loads_bgr_images_and_shapes(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, [(40, 30)] * 6)
    out = LoadMultiViewImageFromFiles(to_float32=True)(dict(img_filename=paths))
    assert len(out["img"]) == 6 and out["img_shape"] == (30, 40) == out["ori_shape"]
    assert out["img"][0].dtype == np.float32 and out["img"][0].shape == (30, 40, 3)
    np.testing.assert_array_equal(out["img"][3][0, 0], [10, 103, 200])  # BGR
    assert out["filename"] == paths
    assert LoadMultiViewImageFromFiles()(dict(img_filename=paths))["img"][0].dtype == np.uint8


def test_missing_image_names_the_path(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, [(8, 6)] * 5) + [str(tmp_path / "CAM_BACK" / "missing.jpg")]
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        LoadMultiViewImageFromFiles(to_float32=True)(dict(img_filename=paths))


@pytest.mark.parametrize("cut", [0.5, None], ids=["truncated_jpeg", "not_an_image"])
def test_undecodable_image_names_the_path(tmp_path: Path, cut) -> None:
    path = tmp_path / "CAM_FRONT.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)] if cut else b"not a jpeg")
    with pytest.raises(OSError, match="cannot decode camera image .*CAM_FRONT.jpg") as info:
        LoadMultiViewImageFromFiles()(dict(img_filename=[str(path)]))
    assert str(path) in str(info.value)


def test_rejects_mixed_sizes_and_bad_colour(tmp_path: Path) -> None:
    paths = _write_images(tmp_path, [(8, 6), (8, 7)])
    with pytest.raises(ValueError, match="one size"):
        LoadMultiViewImageFromFiles()(dict(img_filename=paths))
    with pytest.raises(ValueError, match="color_type"):
        LoadMultiViewImageFromFiles(color_type="grayscale")
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((6, 8), 50, np.uint8)).save(gray)
    with pytest.raises(ValueError, match="mode 'L'"):
        LoadMultiViewImageFromFiles()(dict(img_filename=[str(gray)]))
    out = LoadMultiViewImageFromFiles(color_type="color")(dict(img_filename=[str(gray)]))
    assert out["img"][0].shape == (6, 8, 3)


def test_loads_world_images(world_dataset) -> None:
    results = world_dataset.get_data_info(0)
    out = LoadMultiViewImageFromFiles(to_float32=True)(results)
    assert out["img_shape"] == (225, 400) and len(out["img"]) == 6


def _annotations() -> dict:
    return dict(
        gt_bboxes_3d=np.zeros((3, 9)), gt_labels_3d=[0, 1, 2], attr_labels=[1, 1, 1],
        gt_bboxes=[np.zeros((2, 4)), np.zeros((0, 4))], gt_labels=[[0, 1], []],
        centers2d=[np.zeros((2, 2)), np.zeros((0, 2))], depths=[[1.0, 2.0], []],
    )


def test_annotations_are_selected_and_typed() -> None:
    out = LoadAnnotations3D(with_bbox=True, with_label=True, with_bbox_depth=False)(_annotations())
    assert out["gt_bboxes_3d"].dtype == np.float32 and out["gt_bboxes_3d"].shape == (3, 9)
    assert out["gt_labels_3d"].dtype == np.int64
    assert out["gt_labels"][1].dtype == np.int64 and out["gt_labels"][1].shape == (0,)
    assert out["gt_bboxes"][0].dtype == np.float32
    assert not {"centers2d", "depths", "attr_labels"} & set(out)


def test_annotations_missing_or_inconsistent_raise() -> None:
    with pytest.raises(KeyError, match="attr_labels"):
        LoadAnnotations3D(with_attr_label=True)(dict(gt_bboxes_3d=np.zeros((0, 9)), gt_labels_3d=[]))
    bad = _annotations()
    bad["depths"] = [[1.0], []]
    with pytest.raises(ValueError, match="camera 0"):
        LoadAnnotations3D(with_bbox=True, with_label=True, with_bbox_depth=True)(bad)
    bad = _annotations()
    bad["gt_labels_3d"] = [0, 1]
    with pytest.raises(ValueError, match="number of objects"):
        LoadAnnotations3D()(bad)
    with pytest.raises(TypeError):
        LoadAnnotations3D(with_bbox3d=True)
