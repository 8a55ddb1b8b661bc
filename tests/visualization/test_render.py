"""render_sample writes a PNG a person can read: right size, boxes drawn where they belong."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.visualization.render import SampleBoxes, SampleView, render_sample


@pytest.fixture(scope="module")
def view(val_dataset) -> SampleView:
    info = val_dataset.get_data_info(1)
    images = [np.asarray(Image.open(path).convert("RGB")) for path in info["img_filename"]]
    gt = SampleBoxes(info["gt_bboxes_3d"], info["gt_labels_3d"])
    preds = SampleBoxes(info["gt_bboxes_3d"] + np.array([0.5, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32),
                        info["gt_labels_3d"], np.linspace(0.2, 0.9, len(info["gt_labels_3d"])))
    return SampleView(images, np.stack(info["lidar2img"]), preds, gt, NUSCENES_CLASSES,
                      cam_names=info["cam_names"], title=info["sample_idx"])


@pytest.mark.parametrize("dpi, size", [(100, (2020, 778)), (50, (1010, 389))])
def test_png_is_valid_and_sized_by_dpi(view, tmp_path, dpi, size):
    path = render_sample(view, tmp_path / "out" / "sample.png", dpi=dpi)
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size


def test_boxes_change_the_drawing(view, tmp_path):
    empty = SampleView(view.images, view.lidar2img, None, None, NUSCENES_CLASSES)
    with_boxes = np.asarray(Image.open(render_sample(view, tmp_path / "a.png")).convert("RGB"), dtype=int)
    without = np.asarray(Image.open(render_sample(empty, tmp_path / "b.png")).convert("RGB"), dtype=int)
    changed = np.abs(with_boxes - without).sum(-1) > 60
    height, width = changed.shape
    assert changed[: int(0.9 * height), : int(0.72 * width)].mean() > 0.002  # camera panels
    assert changed[: int(0.9 * height), int(0.72 * width):].mean() > 0.002  # BEV panel


def test_mismatched_inputs_are_refused(view, tmp_path):
    bad = SampleView(view.images, view.lidar2img[:2], None, None, NUSCENES_CLASSES)
    with pytest.raises(ValueError, match="lidar2img"):
        render_sample(bad, tmp_path / "x.png")
