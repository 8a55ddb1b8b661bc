"""A readable text table of nuScenes detection metrics (as printed by the tools)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUMMARY_KEYS = ("mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "mAAE")
TP_COLUMNS = ("ATE", "ASE", "AOE", "AVE", "AAE")
_NAME_WIDTH = 22
_VALUE_WIDTH = 8


def _cell(value: float | None) -> str:
    """One right-aligned value, ``n/a`` where the metric is undefined."""
    text = "n/a" if value is None else f"{value:.4f}"
    return text.rjust(_VALUE_WIDTH)


def format_metrics_table(metrics: Mapping[str, Any]) -> str:
    """Format the metrics of ``evaluate_submission`` as a text table.

    Args:
        metrics: the dict returned by
            :func:`~projects.mmdet3d_plugin.datasets.evaluation.nusc_eval.evaluate_submission`
            (``NDS``, ``mAP``, ``mATE`` ... and ``per_class``).

    Returns:
        A multi-line string: a header naming the split, the summary metrics, then one row
        per class with its AP (mean and per distance threshold) and TP errors.

    Raises:
        KeyError: a summary metric or ``per_class`` is missing.
    """
    missing = [key for key in (*SUMMARY_KEYS, "per_class") if key not in metrics]
    if missing:
        raise KeyError(f"metrics lack {missing}; expected the dict of evaluate_submission")
    per_class = metrics["per_class"]
    ap_columns = sorted(
        {key for entry in per_class.values() for key in entry if key.startswith("AP@")},
        key=lambda key: float(key[3:]),
    )
    columns = ("AP", *ap_columns, *TP_COLUMNS)
    title = "nuScenes detection"
    if "eval_set" in metrics:
        title += f" ({metrics.get('version', '?')} {metrics['eval_set']}, {metrics.get('config_name', '?')})"
    lines = [title]
    lines.append("  ".join(f"{key} {metrics[key]:.4f}" for key in SUMMARY_KEYS))
    lines.append("")
    lines.append("class".ljust(_NAME_WIDTH) + "".join(column.rjust(_VALUE_WIDTH) for column in columns))
    for name, entry in per_class.items():
        lines.append(name.ljust(_NAME_WIDTH) + "".join(_cell(entry.get(column)) for column in columns))
    return "\n".join(lines)
