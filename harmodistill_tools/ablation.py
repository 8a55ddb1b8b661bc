"""Distillation ablations: which losses form each family, and the mean ± std table over seeds.

``tools/distill_results.py`` trains the plain student and the distilled student with all
losses or one family at a time (``model.enabled_losses``) over several seeds; the families
are read from the distillation config by loss type, so a config with other loss names or
extra losses of a known type needs no change in the tool.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from projects.mmdet3d_plugin.core.stats import mean_std

FAMILY_TYPES: dict[str, tuple[str, ...]] = {
    "feature": ("BalancedKLLoss", "ChannelWiseDivergence", "FGDLoss", "MGDLoss", "FitNetsLoss"),
    "query": ("QueryFieldLoss", "DenseQueryFieldLoss", "QueryAttentionLoss"),
    "output": ("OutputDistillLoss", "OutputRelationLoss"),
    "bev": ("BEVFeatureLoss",),
    "depth": ("LidarDepthLoss",),
}


def loss_families(distill_losses: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Names of the declared losses of each family (families without a loss are left out).

    Args:
        distill_losses: the distiller config's ``distill_losses`` (name → loss config).

    Raises:
        KeyError: a loss's ``type`` belongs to no family (the message lists the families).
    """
    family_of = {loss_type: family for family, types in FAMILY_TYPES.items() for loss_type in types}
    families: dict[str, list[str]] = {}
    for name, cfg in distill_losses.items():
        loss_type = cfg.get("type")
        if loss_type not in family_of:
            raise KeyError(f"distill_losses.{name} has type {loss_type!r}, which belongs to no "
                           f"ablation family; known: {FAMILY_TYPES}")
        families.setdefault(family_of[loss_type], []).append(name)
    return families


def results_table(runs: Mapping[str, Mapping[int, Mapping[str, float]]], baseline: str,
                  metrics: Sequence[str] = ("NDS", "mAP")) -> str:
    """A markdown table: per variant, mean ± std of each metric and its difference to ``baseline``.

    Args:
        runs: variant → seed → metrics (at least ``metrics``) of that run.
        baseline: the variant the differences are taken against (e.g. ``'plain'``).
        metrics: the metric names to report.

    The difference is taken seed by seed (same seed, same data order and initialisation), then
    averaged; ``wins`` counts the seeds where the variant's first metric beats the baseline.
    """
    if baseline not in runs:
        raise KeyError(f"baseline {baseline!r} has no runs; variants: {sorted(runs)}")
    header = ["variant", "seeds"] + [f"{m} (mean ± std)" for m in metrics]
    header += [f"Δ{m} vs {baseline}" for m in metrics] + [f"wins ({metrics[0]})"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    base = runs[baseline]
    for variant, seeds in runs.items():
        cells = [variant, ",".join(str(s) for s in sorted(seeds))]
        for m in metrics:
            mean, std = mean_std([seeds[s][m] for s in sorted(seeds)])
            cells.append(f"{mean:.4f} ± {std:.4f}")
        paired = sorted(s for s in seeds if s in base)
        for m in metrics:
            if variant == baseline or not paired:
                cells.append("")
                continue
            mean, std = mean_std([seeds[s][m] - base[s][m] for s in paired])
            cells.append(f"{mean:+.4f} ± {std:.4f}")
        wins = sum(seeds[s][metrics[0]] > base[s][metrics[0]] for s in paired)
        cells.append("" if variant == baseline else f"{wins}/{len(paired)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
