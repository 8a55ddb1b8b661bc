"""Lifted teacher and student BEV feature maps side by side, with the DistillBEV regions.

:func:`render_bev_features` draws what a BEV distillation loss compares
(``kd/losses/bev_feature.py``): the teacher's and the student's FPN maps lifted into the
same BEV grid, their per-cell disagreement, and the region of every cell (true / false
positive, false / true negative of the teacher against the ground truth) that weighs it.
The maps are computed by the loss module itself (``tools/visualize.py`` asks the distiller's
loss for them), so the picture is the loss's own view; this module only draws arrays.

Panels (x forward up, -y right, as the query-field panels):

* teacher and student: the per-cell feature norm ``||F[:, i, j]||_2``, each on its own
  colour scale (the two backbones' feature scales differ);
* disagreement: ``1 - cos(F_T[:, i, j], F_S[:, i, j])`` in ``[0, 2]``, scale-free;
  cells no camera sees (zero features) are shown as 0;
* regions: TP / FN / FP / TN colours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

#: Region label (``kd/losses/region_weights.py``: TP 0, FN 1, FP 2, TN 3) → (name, colour).
REGION_STYLE = (("TP", "#66ff00"), ("FN", "#00ffff"), ("FP", "#ff00ff"), ("TN", "#202020"))


def feature_norm(bev: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` → ``(H, W)`` per-cell L2 norm over the channels."""
    return np.sqrt(np.square(bev.astype(np.float64)).sum(axis=0))


def cosine_disagreement(teacher: np.ndarray, student: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``(C, H, W)`` pair → ``(H, W)`` ``1 - cos`` per cell; 0 where either map is zero."""
    t, s = teacher.astype(np.float64), student.astype(np.float64)
    norms = np.sqrt(np.square(t).sum(0)) * np.sqrt(np.square(s).sum(0))
    cos = np.where(norms > eps, (t * s).sum(0) / np.maximum(norms, eps), 1.0)
    return 1.0 - cos


def _check(teacher: np.ndarray, student: np.ndarray, labels: Optional[np.ndarray]) -> None:
    if teacher.ndim != 3 or teacher.shape != student.shape:
        raise ValueError(f"render_bev_features expects teacher and student maps (C, H, W) of one shape, "
                         f"got {teacher.shape} and {student.shape}")
    if labels is not None and labels.shape != teacher.shape[1:]:
        raise ValueError(f"region labels {labels.shape} must be (H, W) = {teacher.shape[1:]}")


def _show(ax: Any, grid: np.ndarray, pc_range: Sequence[float], title: str, **kwargs: Any) -> Any:
    """Draw an ``(H, W)`` grid (rows along y, columns along x) with x up and -y right."""
    x0, y0, _, x1, y1, _ = pc_range
    image = ax.imshow(grid.T[::-1, ::-1], extent=(-y1, -y0, x0, x1), interpolation="nearest", **kwargs)
    ax.plot([0], [0], marker="^", color="white", markersize=5)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    return image


def render_bev_features(teacher: np.ndarray, student: np.ndarray, labels: Optional[np.ndarray],
                        out_path: str | Path, pc_range: Sequence[float], title: str = "",
                        dpi: int = 100) -> Path:
    """Teacher | student | disagreement | regions, one PNG.

    Args:
        teacher, student: ``(C, H, W)`` lifted BEV maps of one sample (rows along y,
            columns along x over ``pc_range``).
        labels: ``(H, W)`` region labels (TP 0, FN 1, FP 2, TN 3) or ``None`` (a loss
            without region weights: the panel says so).
        out_path: the PNG file.
        pc_range: ``(6,)`` extent of the grid.
        title: caption (e.g. the sample token and the loss name).

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    _check(teacher, student, labels)
    fig = Figure(figsize=(16, 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
    for ax, bev, name in ((axes[0], teacher, "teacher"), (axes[1], student, "student")):
        image = _show(ax, feature_norm(bev), pc_range, f"{name}: ||F|| per cell", cmap="magma")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    image = _show(axes[2], cosine_disagreement(teacher, student), pc_range,
                  "disagreement: 1 - cos(F_T, F_S)", cmap="viridis", vmin=0.0, vmax=2.0)
    fig.colorbar(image, ax=axes[2], fraction=0.046, pad=0.02)
    if labels is None:
        _show(axes[3], np.zeros(teacher.shape[1:]), pc_range, "regions: none (uniform weights)",
              cmap="gray", vmin=0, vmax=1)
    else:
        colours = ListedColormap([colour for _, colour in REGION_STYLE])
        _show(axes[3], labels.astype(np.float64), pc_range, "DistillBEV regions", cmap=colours,
              vmin=-0.5, vmax=len(REGION_STYLE) - 0.5)
        counts = np.bincount(labels.reshape(-1).astype(np.int64), minlength=len(REGION_STYLE))
        axes[3].legend(handles=[Patch(color=colour, label=f"{name} ({count})")
                                for (name, colour), count in zip(REGION_STYLE, counts)],
                       fontsize=6, loc="lower left", framealpha=0.8)
    fig.suptitle(f"{title}\nlifted FPN features in BEV (x forward up, -y right)", fontsize=9)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi, facecolor="white")
    return out_path
