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


def _front_camera() -> np.ndarray:
    """lidar2img of a camera at the origin looking along +x (f = 100, 200x100 image)."""
    intrinsics = np.array([[100.0, 0, 100, 0], [0, 100.0, 50, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    axes = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    return intrinsics @ axes


def _outcome_pixels(tmp_path, preds: list, pred_labels: list, gt: list, gt_labels: list) -> dict:
    """Render hand-made boxes over a plain grey camera; per outcome colour, whether it shows in
    the camera part and in the BEV part of the PNG."""
    from matplotlib.colors import to_rgb

    from projects.mmdet3d_plugin.visualization import status_style

    def boxes(rows: list) -> np.ndarray:
        return np.array([[x, y, 0.0, 8.0, 3.0, 2.0, 0.0, 0.0, 0.0] for x, y in rows]).reshape(-1, 9)

    view = SampleView([np.full((100, 200, 3), 128, np.uint8)], _front_camera()[None],
                      SampleBoxes(boxes(preds), np.array(pred_labels, dtype=int), np.full(len(preds), 0.9)),
                      SampleBoxes(boxes(gt), np.array(gt_labels, dtype=int)), NUSCENES_CLASSES)
    image = np.asarray(Image.open(render_sample(view, tmp_path / "o.png")).convert("RGB"), dtype=int)
    split = int(0.72 * image.shape[1])
    found = {}
    for name in ("TP_COLOR", "FP_COLOR", "MISSED_COLOR"):
        near = (np.abs(image - np.array(to_rgb(getattr(status_style, name))) * 255).max(-1) < 40)
        near[int(0.88 * image.shape[0]):] = False  # not the legend
        found[name] = (near[:, :split].sum() > 10, near[:, split:].sum() > 10)
    return found


@pytest.mark.parametrize("case, expected", [
    ("matched", {"TP_COLOR": (True, True), "FP_COLOR": (False, False), "MISSED_COLOR": (False, False)}),
    ("wrong_class", {"TP_COLOR": (False, False), "FP_COLOR": (True, True), "MISSED_COLOR": (True, True)}),
    ("too_far", {"TP_COLOR": (False, False), "FP_COLOR": (True, True), "MISSED_COLOR": (True, True)}),
])
def test_each_outcome_has_its_colour_in_camera_and_bev(tmp_path, case, expected):
    """A matched pair is green, a false positive magenta and missed ground truth cyan, both in
    the camera view and in BEV; no other outcome colour appears."""
    preds, labels = {"matched": ([(20.0, 0.5)], [0]), "wrong_class": ([(20.0, 0.0)], [1]),
                     "too_far": ([(20.0, 5.0)], [0])}[case]
    assert _outcome_pixels(tmp_path, preds, labels, [(20.0, 0.0)], [0]) == expected
