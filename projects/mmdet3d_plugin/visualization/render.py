"""One PNG per sample: six camera images with projected 3D boxes, a BEV panel and a caption.

Predictions (score >= ``score_thr``) are matched to the ground truth (same class, BEV centre
within 2 m, :mod:`.matching`) and every box is drawn by its outcome, the same way in every
panel (:mod:`.status_style`): green a true positive and the ground truth it matched, magenta
a false positive, cyan missed ground truth; solid a prediction, dashed ground truth. Camera
boxes carry a ``class score`` label above them (missed ground truth: ``class`` below them);
missed ground truth is drawn over the predictions (dashed, so both show); false positives get an
``x`` at their centre in BEV. Matplotlib is used through its object API with the Agg canvas
(no pyplot, no global backend switch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..core.bbox.box_layout import CAMERA_NAMES
from .matching import MATCH_DISTANCE_M, MatchResult, classify_boxes
from .projection import box_edges_2d, corners_of
from .status_style import (FALSE_POSITIVE, MATCHED_GT, MISSED_GT, TRUE_POSITIVE, LineStyle, legend_handles,
                           short_name)

BEV_BACKGROUND = "#1e1e1e"
EGO_COLOR = "white"
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


def _kept(predictions: Optional[SampleBoxes], score_thr: float) -> SampleBoxes:
    """Predictions with score >= ``score_thr`` (empty when None)."""
    if predictions is None:
        return SampleBoxes(np.zeros((0, 9)), np.zeros(0, dtype=np.int64), np.zeros(0))
    keep = np.asarray(predictions.scores) >= score_thr
    return SampleBoxes(np.asarray(predictions.boxes)[keep], np.asarray(predictions.labels)[keep],
                       np.asarray(predictions.scores)[keep])


@dataclass
class _StyledBoxes:
    """Boxes of one outcome with their line style and label texts (``None``: no labels)."""

    boxes: np.ndarray  # (K, 9)
    style: LineStyle
    labels: Optional[list[str]] = None


def _styled(preds: SampleBoxes, gt: SampleBoxes, match: MatchResult, class_names: Sequence[str]
            ) -> list[_StyledBoxes]:
    """Drawing order: matched ground truth (under its true positive, so only an offset shows),
    false positives, true positives, then missed ground truth (dashed, on top, so a wrong-class
    prediction on the same object does not hide it); each with its outcome's style."""
    def names(boxes: SampleBoxes, mask: np.ndarray, scores: bool) -> list[str]:
        texts = [short_name(class_names[int(label)]) for label in np.asarray(boxes.labels)[mask]]
        return [f"{t} {s:.2f}" for t, s in zip(texts, np.asarray(boxes.scores)[mask])] if scores else texts

    return [_StyledBoxes(gt.boxes[match.gt_matched], MATCHED_GT),
            _StyledBoxes(preds.boxes[match.false_positive], FALSE_POSITIVE, names(preds, match.false_positive, True)),
            _StyledBoxes(preds.boxes[match.true_positive], TRUE_POSITIVE, names(preds, match.true_positive, True)),
            _StyledBoxes(gt.boxes[match.missed], MISSED_GT, names(gt, match.missed, False))]


def _label(ax, segments: np.ndarray, text: str, style: LineStyle, width: int, height: int) -> None:
    """``text`` above the box's highest projected point (ground truth: below its lowest, so a
    prediction's label on the same object stays readable), kept inside the image."""
    points = segments.reshape(-1, 2)
    below = style.linestyle != "solid"
    anchor = points[np.argmax(points[:, 1])] if below else points[np.argmin(points[:, 1])]
    x = float(np.clip(anchor[0], 2, width - 2))
    y = float(np.clip(anchor[1] + 2, 0, height - 9)) if below else float(np.clip(anchor[1] - 2, 9, height))
    ax.text(x, y, text, color=style.color, fontsize=6, ha="center", va="top" if below else "bottom",
            clip_on=True, bbox=dict(boxstyle="square,pad=0.1", facecolor="black", alpha=0.65, edgecolor="none"))


def _draw_camera(ax, image: np.ndarray, lidar2img: np.ndarray, groups: Sequence[_StyledBoxes], name: str) -> None:
    """One camera: the image and every box group projected in its style, with labels."""
    from matplotlib.collections import LineCollection

    height, width = image.shape[:2]
    ax.imshow(image, extent=(0, width, height, 0), interpolation="bilinear")
    for group in groups:
        per_box = box_edges_2d(group.boxes, lidar2img) if len(group.boxes) else []
        segments = [s for s in per_box if len(s)]
        if segments:
            ax.add_collection(LineCollection(np.concatenate(segments), **group.style.collection_kwargs()))
        for segs, text in zip(per_box, group.labels or []):
            points = segs.reshape(-1, 2)
            if ((points >= 0) & (points <= (width, height))).all(-1).any():  # some edge in the image
                _label(ax, segs, text, group.style, width, height)
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
                         closed=True, color=EGO_COLOR, zorder=5))
    ax.set_xlim(-bev_range, bev_range)
    ax.set_ylim(-bev_range, bev_range)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_xlabel("-y (m, right of ego)", fontsize=7)
    ax.set_ylabel("x (m, forward)", fontsize=7)
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()


def _draw_bev(ax, groups: Sequence[_StyledBoxes], bev_range: float) -> None:
    """BEV panel: footprints in each group's style, heading ticks on predictions, ``x`` on FPs."""
    from matplotlib.collections import LineCollection

    _draw_bev_frame(ax, bev_range)
    for group in groups:
        if not len(group.boxes):
            continue
        outline_xy = _bev_outline(group.boxes)
        segments = list(outline_xy)
        if group.style.linestyle == "solid":  # predictions: heading tick from the centre to the front
            centre = np.stack([-group.boxes[:, 1], group.boxes[:, 0]], -1)
            segments += list(np.stack([centre, outline_xy[:, 2:4].mean(1)], 1))
        ax.add_collection(LineCollection(segments, **group.style.collection_kwargs()))
        if group.style is FALSE_POSITIVE:
            ax.scatter(-group.boxes[:, 1], group.boxes[:, 0], marker="x", s=22, linewidths=1.2,
                       c=group.style.color, zorder=6)
    ax.set_title("BEV (LiDAR frame)", fontsize=8, pad=2)


def _legend(fig) -> None:
    """The outcome colours and line kinds."""
    fig.legend(handles=legend_handles(MATCH_DISTANCE_M), loc="lower center", ncol=5, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.0), handlelength=4)


def _caption(title: str, score_thr: float, match: MatchResult) -> str:
    """Title line, then the counts of each outcome."""
    return (f"{title}\npredictions with score >= {score_thr:g}: {len(match.pred_match)} = "
            f"{int(match.true_positive.sum())} true positives (green) + {int(match.false_positive.sum())} "
            f"false positives (magenta);  ground truth: {len(match.gt_matched)} = "
            f"{int(match.gt_matched.sum())} matched + {int(match.missed.sum())} missed (cyan)")


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
    gt = view.ground_truth or SampleBoxes(np.zeros((0, 9)), np.zeros(0, dtype=np.int64))
    gt = SampleBoxes(np.asarray(gt.boxes).reshape(-1, 9), np.asarray(gt.labels))
    match = classify_boxes(preds.boxes, preds.labels, preds.scores, gt.boxes, gt.labels, MATCH_DISTANCE_M)
    groups = _styled(preds, gt, match, view.class_names)
    width_in, height_in = _CAMERA_INCHES
    top, bottom = 0.88, 0.10
    fig = Figure(figsize=(3 * width_in + 2 * height_in + 0.4, 2.25 * height_in / (top - bottom)), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 4, width_ratios=[width_in] * 3 + [2 * height_in], left=0.01, right=0.99,
                            top=top, bottom=bottom, wspace=0.03, hspace=0.15)
    for index, (image, matrix) in enumerate(zip(view.images, view.lidar2img)):
        name = view.cam_names[index] if index < len(view.cam_names) else f"camera {index}"
        _draw_camera(fig.add_subplot(grid[index // 3, index % 3]), image, np.asarray(matrix), groups, name)
    _draw_bev(fig.add_subplot(grid[:, 3]), groups, bev_range)
    _legend(fig)
    fig.suptitle(_caption(view.title, score_thr, match), fontsize=9, y=0.985)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi, facecolor="white")
    return out_path
