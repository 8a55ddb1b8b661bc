"""A picture of a seeds study: every run as a dot, the mean ± std of each variant as a bar.

Used by ``tools/distill_results.py`` (``WORK/results.png``). Matplotlib through its object
API with the Agg canvas, as in :mod:`.render`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.stats import mean_std


def plot_seed_results(runs: Mapping[str, Mapping[int, Mapping[str, float]]], out_path: str | Path,
                      metrics: Sequence[str] = ("NDS", "mAP"), title: str = "") -> Path:
    """One panel per metric; per variant its runs (dots, labelled by seed) and mean ± std.

    Args:
        runs: variant → seed → metrics of that run (at least ``metrics``).
        out_path: the PNG to write (parent folders are created).
        metrics: the metric names to plot.
        title: the figure title.

    Returns:
        ``out_path`` as a ``Path``.
    """
    variants = [v for v, seeds in runs.items() if seeds]
    if not variants:
        raise ValueError("plot_seed_results: no runs to plot")
    width = max(4.0, 0.8 * len(variants))  # room for every variant name under its column
    fig = Figure(figsize=(width * len(metrics), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    for col, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), col + 1)
        for x, variant in enumerate(variants):
            seeds = sorted(runs[variant])
            values = [runs[variant][s][metric] for s in seeds]
            mean, std = mean_std(values)
            ax.errorbar([x], [mean], yerr=[std], fmt="_", markersize=22, capsize=6, color="black", zorder=2)
            offsets = [x + 0.12 * (i - (len(values) - 1) / 2) for i in range(len(values))]
            ax.scatter(offsets, values, s=22, color="tab:blue", zorder=3)
            for ox, value, seed in zip(offsets, values, seeds):
                ax.annotate(str(seed), (ox, value), textcoords="offset points", xytext=(4, 2), fontsize=7)
        ax.set_xticks(range(len(variants)), variants)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.set_ylabel(f"{metric} (official evaluator)")
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path
