"""Teacher and student 3D-query receptive fields, side by side in BEV.

:func:`record_query_field` runs a detector's ``predict`` on a batch with two temporary
taps (:class:`~..kd.recorders.TapManager`: the head's output, and a method tap) and returns
where its queries sample the images: for RayDN the deformable aggregation's key points of
the last decoder layer (its ``key_points`` method, ``...attentions.1.key_points``,
``(B, Q, 13, 3)`` metres), for StreamPETR (no key points) the query reference points. Each
location carries its query's best class score.

:func:`render_query_fields` draws the teacher's and the student's fields. When the
distillation loss module ``kd/losses/query_field.py`` is importable, the fields are splatted
into a BEV grid with its :func:`splat_bev` (the map the HarmoDistill loss aligns); otherwise
the locations are drawn as a scatter, and the panel title says so.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..kd.recorders import TapManager

_SPLAT_MODULE = "projects.mmdet3d_plugin.kd.losses.query_field"
_KEY_POINTS = "key_points"


@dataclass
class QueryField:
    """Sampling locations of one sample's queries.

    Attributes:
        points: ``(M, 3)`` metric LiDAR-frame locations.
        values: ``(M,)`` the best class score of the query each location belongs to.
        source: ``'dfa_key_points'`` or ``'reference_points'``.
    """

    points: np.ndarray
    values: np.ndarray
    source: str


def _last_key_points(head: nn.Module) -> Optional[str]:
    """Path (inside ``head``) of the last module with a ``key_points`` method (the DFA of
    the last decoder layer), or None."""
    names = [name for name, module in head.named_modules()
             if name and callable(getattr(type(module), _KEY_POINTS, None))]
    return names[-1] if names else None


def record_query_field(detector: nn.Module, batch: Mapping[str, Any], sample: int = 0
                       ) -> tuple[list[dict[str, torch.Tensor]], QueryField]:
    """Run ``detector(batch, mode='predict')`` and record its query field.

    Args:
        detector: a RepDetr3D / Petr3D (its memory advances as in any predict call).
        batch: a collated batch.
        sample: which batch element's field to return.

    Returns:
        The predictions and the :class:`QueryField` of ``sample``.
    """
    head = detector.pts_bbox_head
    taps = {"head": dict(model="detector", path="pts_bbox_head")}
    key_points = _last_key_points(head)
    if key_points is not None:
        taps["points"] = dict(model="detector", path=f"pts_bbox_head.{key_points}.{_KEY_POINTS}")
    manager = TapManager({"detector": detector}, taps)
    try:
        with manager.recording(), torch.no_grad():
            predictions = detector(batch, mode="predict")
            captured = {name: manager.pop(name) for name in manager.names}
    finally:
        manager.remove()
    scores = captured["head"]["all_cls_scores"][-1, sample].sigmoid().max(-1).values
    if "points" in captured:
        points = captured["points"][sample]  # (Q, P, 3)
        values = scores[:, None].expand(points.shape[:2])
        field = QueryField(points.reshape(-1, 3).cpu().numpy(), values.reshape(-1).cpu().numpy(),
                           "dfa_key_points")
    else:
        span = head.pc_range[3:] - head.pc_range[:3]
        points = captured["head"]["reference_points"][sample] * span + head.pc_range[:3]
        field = QueryField(points.cpu().numpy(), scores.cpu().numpy(), "reference_points")
    return predictions, field


def bev_splatter() -> Optional[Callable[..., torch.Tensor]]:
    """``splat_bev`` of the distillation loss module, or None when it is not available."""
    try:
        module = importlib.import_module(_SPLAT_MODULE)
    except ImportError:
        return None
    return getattr(module, "splat_bev", None)


def _draw_field(ax: Any, field: QueryField, pc_range: Sequence[float], bev_size: Sequence[int],
                splat: Optional[Callable[..., torch.Tensor]], name: str) -> None:
    """One panel: the splatted BEV map, or a scatter of the locations."""
    x0, y0, _, x1, y1, _ = pc_range
    ax.set_facecolor("#101010")
    if splat is not None:
        grid = splat(torch.from_numpy(field.points).float()[None], torch.from_numpy(field.values).float()[None],
                     pc_range, bev_size)[0].numpy()
        # grid rows run along y, columns along x; shown with x up and -y to the right.
        ax.imshow(grid.T[::-1, ::-1],
                  extent=(-y1, -y0, x0, x1), cmap="magma", interpolation="nearest")
        how = f"splat_bev {bev_size[0]}x{bev_size[1]}"
    else:
        ax.scatter(-field.points[:, 1], field.points[:, 0], c=field.values, s=4, cmap="magma", vmin=0, vmax=1)
        how = "scatter (kd/losses/query_field.py not available)"
    ax.plot([0], [0], marker="^", color="#00e5ff", markersize=6)
    ax.set_xlim(-y1, -y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_title(f"{name}: {field.source}, {how}", fontsize=8)


def render_query_fields(teacher: QueryField, student: QueryField, out_path: str | Path,
                        pc_range: Sequence[float], bev_size: Sequence[int] = (128, 128),
                        title: str = "", dpi: int = 100) -> Path:
    """Teacher | student query receptive fields in BEV, one PNG.

    Args:
        teacher, student: fields from :func:`record_query_field`.
        out_path: the PNG file.
        pc_range: ``(6,)`` extent of the panels (and of the splat grid).
        bev_size: ``(H, W)`` cells of the splat grid.
        title: caption (e.g. the sample token).

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splat = bev_splatter()
    fig = Figure(figsize=(11, 5.8), dpi=dpi)
    FigureCanvasAgg(fig)
    for index, (field, name) in enumerate(((teacher, "teacher"), (student, "student"))):
        _draw_field(fig.add_subplot(1, 2, index + 1), field, pc_range, bev_size, splat, name)
    fig.suptitle(f"{title}\nquery receptive fields (value: the query's best class score; "
                 f"x forward up, -y right)", fontsize=9)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi, facecolor="white")
    return out_path
