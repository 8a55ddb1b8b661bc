"""One PNG per sample: six camera images with projected 3D boxes, a BEV panel and a caption.

Predictions (score >= ``score_thr``) are drawn solid in their class colour; ground truth in
white, dashed. Predictions are matched to the ground truth (same class, BEV centre within
2 m, :mod:`.matching`): true positives are drawn thick, false positives thin with an ``x``
at their centre in the BEV panel, missed ground-truth boxes get a magenta dashed outline there.
Matplotlib is used through its object API with the Agg canvas (no pyplot, no global
backend switch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..core.bbox.box_layout import CAMERA_NAMES
from .matching import match_predictions
from .projection import box_edges_2d, corners_of

MATCH_DISTANCE_M = 2.0
GT_STYLE = dict(color="white", linestyle=(0, (4, 2)), linewidth=1.2)
MISSED_COLOR = "#ff00ff"  # magenta: no tab10 class colour is close
BEV_BACKGROUND = "#1e1e1e"
_CAMERA_INCHES = (4.8, 2.7)


@dataclass
class SampleBoxes:
    """Boxes of one sample (LiDAR frame, box layout)."""

    boxes: np.ndarray  # (K, 9)
    labels: np.ndarray  # (K,) int, index into the class names
    scores: Optional[np.ndarray] = None  # (K,) for predictions


@dataclass
class SampleView:
    """What :func:`render_sample` draws.

    Attributes:
        images: N ``(H, W, 3)`` uint8 RGB camera images (not normalised).
        lidar2img: ``(N, 4, 4)`` matrices of exactly those images.
        predictions, ground_truth: boxes (either may be None).
        class_names: names of the label indices.
        cam_names: camera names (titles).
        title: caption's first line (e.g. the sample token).
    """

    images: Sequence[np.ndarray]
    lidar2img: np.ndarray
    predictions: Optional[SampleBoxes]
    ground_truth: Optional[SampleBoxes]
    class_names: Sequence[str]
    cam_names: Sequence[str] = field(default_factory=lambda: list(CAMERA_NAMES))
    title: str = ""


def class_colors(num_classes: int) -> list[tuple[float, float, float]]:
    """A distinct, bright colour per class (tab10, then tab20)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [tuple(cmap(i % cmap.N)[:3]) for i in range(num_classes)]


def _kept(predictions: Optional[SampleBoxes], score_thr: float) -> SampleBoxes:
    """Predictions with score >= ``score_thr`` (empty when None)."""
    if predictions is None:
        return SampleBoxes(np.zeros((0, 9)), np.zeros(0, dtype=np.int64), np.zeros(0))
    keep = np.asarray(predictions.scores) >= score_thr
    return SampleBoxes(np.asarray(predictions.boxes)[keep], np.asarray(predictions.labels)[keep],
                       np.asarray(predictions.scores)[keep])


def _draw_camera(ax, image: np.ndarray, lidar2img: np.ndarray, preds: SampleBoxes,
                 pred_match: np.ndarray, gt: Optional[SampleBoxes], colors: list, name: str) -> None:
    """One camera: the image, GT (white dashed) and predictions (class colour, solid)."""
    from matplotlib.collections import LineCollection

    height, width = image.shape[:2]
    ax.imshow(image, extent=(0, width, height, 0), interpolation="bilinear")
    if gt is not None and len(gt.boxes):
        segments = [s for s in box_edges_2d(gt.boxes, lidar2img) if len(s)]
        if segments:
            ax.add_collection(LineCollection(np.concatenate(segments), **GT_STYLE))
    for segs, label, matched in zip(box_edges_2d(preds.boxes, lidar2img), preds.labels, pred_match):
        if len(segs):
            ax.add_collection(LineCollection(segs, colors=[colors[int(label)]],
                                             linewidths=2.0 if matched >= 0 else 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(name, fontsize=8, pad=2)
    ax.set_axis_off()


def _bev_outline(boxes: np.ndarray) -> np.ndarray:
    """``(M, 5, 2)`` closed BEV footprints in plot coordinates (``-y`` right, ``x`` up)."""
    corners = corners_of(boxes)[:, [0, 3, 7, 4, 0], :2]  # bottom face, rear-right first
    return np.stack([-corners[..., 1], corners[..., 0]], axis=-1)


def _draw_bev_frame(ax, bev_range: float) -> None:
    """Background, range rings every 10 m and the ego vehicle (heading +x, up)."""
    from matplotlib.patches import Circle, Polygon

    ax.set_facecolor(BEV_BACKGROUND)
    for radius in np.arange(10.0, bev_range + 1e-6, 10.0):
        ax.add_patch(Circle((0, 0), radius, fill=False, color="#5a5a5a", linewidth=0.6))
        ax.text(radius * 0.707, radius * 0.707, f"{radius:.0f} m", color="#8a8a8a", fontsize=6)
    ax.add_patch(Polygon([(-0.9, -2.0), (0.9, -2.0), (0.9, 1.4), (0.0, 2.6), (-0.9, 1.4)],
                         closed=True, color="#00e5ff", zorder=5))
    ax.set_xlim(-bev_range, bev_range)
    ax.set_ylim(-bev_range, bev_range)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_xlabel("-y (m, right of ego)", fontsize=7)
    ax.set_ylabel("x (m, forward)", fontsize=7)
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()


def _draw_bev(ax, preds: SampleBoxes, pred_match: np.ndarray, gt: Optional[SampleBoxes],
              gt_matched: np.ndarray, colors: list, bev_range: float) -> None:
    """BEV panel: GT (white dashed, magenta where missed), predictions, TP thick / FP with x."""
    from matplotlib.collections import LineCollection

    _draw_bev_frame(ax, bev_range)
    if gt is not None and len(gt.boxes):
        outline = _bev_outline(gt.boxes)
        ax.add_collection(LineCollection(outline[gt_matched], **GT_STYLE))
        missed = dict(GT_STYLE, color=MISSED_COLOR, linewidth=2.0)
        ax.add_collection(LineCollection(outline[~gt_matched], **missed))
    if len(preds.boxes):
        outline = _bev_outline(preds.boxes)
        pred_colors = [colors[int(label)] for label in preds.labels]
        widths = np.where(pred_match >= 0, 2.0, 1.0)
        ax.add_collection(LineCollection(outline, colors=pred_colors, linewidths=widths))
        heading = np.stack([outline[:, 2:4].mean(1), np.stack([-preds.boxes[:, 1], preds.boxes[:, 0]], -1)], 1)
        ax.add_collection(LineCollection(heading, colors=pred_colors, linewidths=widths))
        false = pred_match < 0
        ax.scatter(-preds.boxes[false, 1], preds.boxes[false, 0], marker="x", s=18, linewidths=1.0,
                   c=[pred_colors[i] for i in np.flatnonzero(false)], zorder=6)
    ax.set_title("BEV (LiDAR frame)", fontsize=8, pad=2)


def _legend(fig, preds: SampleBoxes, gt: Optional[SampleBoxes], colors: list,
            class_names: Sequence[str]) -> None:
    """Class colours present in the sample, and the line styles."""
    from matplotlib.lines import Line2D

    present = sorted(set(preds.labels.tolist()) | set([] if gt is None else np.asarray(gt.labels).tolist()))
    handles = [Line2D([], [], color=colors[i], linewidth=2, label=class_names[i]) for i in present]
    handles += [Line2D([], [], color="black", linewidth=2, label="prediction: thick = matched (TP)"),
                Line2D([], [], color="black", linewidth=1, marker="x", label="thin + x = false positive"),
                Line2D([], [], color="0.55", linestyle=(0, (4, 2)), label="ground truth (white dashed)"),
                Line2D([], [], color=MISSED_COLOR, linestyle=(0, (4, 2)), label="missed ground truth")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, 0.0))


def render_sample(view: SampleView, out_path: str | Path, score_thr: float = 0.3,
                  bev_range: float = 55.0, dpi: int = 100) -> Path:
    """Draw one sample into a PNG (2x3 cameras on the left, BEV on the right, legend below).

    Args:
        view: images, matrices, boxes and names (see :class:`SampleView`).
        out_path: the PNG file (parent folders are created).
        score_thr: predictions below it are not drawn.
        bev_range: half-width of the BEV panel in metres.
        dpi: resolution; the image is about ``20 x 7.8`` inches.

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(view.images) != len(view.lidar2img) or len(view.images) > 6:
        raise ValueError(f"render_sample needs up to 6 images with one lidar2img each, got "
                         f"{len(view.images)} images and {len(view.lidar2img)} matrices")
    preds = _kept(view.predictions, score_thr)
    gt = view.ground_truth
    gt_boxes = np.zeros((0, 9)) if gt is None else np.asarray(gt.boxes)
    gt_labels = np.zeros(0, dtype=np.int64) if gt is None else np.asarray(gt.labels)
    pred_match, gt_matched = match_predictions(preds.boxes, preds.labels, preds.scores, gt_boxes,
                                               gt_labels, MATCH_DISTANCE_M)
    colors = class_colors(len(view.class_names))
    width_in, height_in = _CAMERA_INCHES
    top, bottom = 0.88, 0.10
    fig = Figure(figsize=(3 * width_in + 2 * height_in + 0.4, 2.25 * height_in / (top - bottom)), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 4, width_ratios=[width_in] * 3 + [2 * height_in], left=0.01, right=0.99,
                            top=top, bottom=bottom, wspace=0.03, hspace=0.15)
    for index, (image, matrix) in enumerate(zip(view.images, view.lidar2img)):
        ax = fig.add_subplot(grid[index // 3, index % 3])
        name = view.cam_names[index] if index < len(view.cam_names) else f"camera {index}"
        _draw_camera(ax, image, np.asarray(matrix), preds, pred_match, gt, colors, name)
    _draw_bev(fig.add_subplot(grid[:, 3]), preds, pred_match, gt, gt_matched, colors, bev_range)
    _legend(fig, preds, gt, colors, view.class_names)
    true_pos = int((pred_match >= 0).sum())
    fig.suptitle(f"{view.title}\npredictions with score >= {score_thr:g}: {len(preds.boxes)} "
                 f"({true_pos} match a GT box within {MATCH_DISTANCE_M:g} m, "
                 f"{len(preds.boxes) - true_pos} do not); ground truth: {len(gt_boxes)} "
                 f"({int((~gt_matched).sum())} missed)", fontsize=9, y=0.985)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi, facecolor="white")
    return out_path
