"""How much of the student's gradient each distillation term carries, next to detection.

A distillation term steers the student only if its gradient is not negligible next to the
detection loss's on the parts it reaches. :func:`term_gradients` runs one distiller step on a
batch and, for the detection loss (the sum of the student's own losses) and for every
distillation loss separately, takes the gradient norm on each part of the student:

========== ===============================================
part       parameters
========== ===============================================
backbone   ``student.img_backbone.*``
neck       ``student.img_neck.*``
head       ``student.pts_bbox_head.*``
head_2d    ``student.img_roi_head.*``
adapters   ``adapters.*``
losses     ``distill_losses.*`` (losses with parameters)
========== ===============================================

:func:`summarise` averages several batches and divides each term's norm by the detection
loss's norm on the same part (its **share**); :func:`suggest_weights` scales a term's
``loss_weight`` so that its share on a chosen part reaches a target (a gradient norm is
linear in the loss weight). Nothing here steps an optimiser: the weights are measured as
they are.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

DETECTION = "detection"
PARTS: dict[str, str] = {
    "backbone": "student.img_backbone.",
    "neck": "student.img_neck.",
    "head": "student.pts_bbox_head.",
    "head_2d": "student.img_roi_head.",
    "adapters": "adapters.",
    "losses": "distill_losses.",
}


@dataclass
class TermReport:
    """One term's value and gradient norms, averaged over the batches seen.

    Attributes:
        name: ``'detection'`` or a distillation loss name.
        value: mean loss value.
        norms: part → mean gradient L2 norm (0 for a part the term does not reach).
        shares: part → ``norms[part] / detection.norms[part]`` (absent where detection has no
            gradient).
        per_batch: the gradient norms of every batch, part → list.
    """

    name: str
    value: float
    norms: dict[str, float]
    shares: dict[str, float] = field(default_factory=dict)
    per_batch: dict[str, list[float]] = field(default_factory=dict)


def parameter_parts(distiller: nn.Module) -> dict[str, list[tuple[str, Tensor]]]:
    """Trainable parameters of the distiller by part (:data:`PARTS`); empty parts are left out."""
    parts: dict[str, list[tuple[str, Tensor]]] = {}
    for name, param in distiller.named_parameters():
        if not param.requires_grad:
            continue
        part = next((p for p, prefix in PARTS.items() if name.startswith(prefix)), None)
        if part is None:
            raise KeyError(f"trainable parameter {name!r} belongs to no part of {sorted(PARTS)}")
        parts.setdefault(part, []).append((name, param))
    return parts


def split_terms(losses: Mapping[str, Tensor], distill_names: Iterable[str]) -> dict[str, Tensor]:
    """``{'detection': sum of the student's losses, <name>: loss_<name> ...}``.

    Args:
        losses: a distiller's ``mode='loss'`` output.
        distill_names: the distillation loss names (``distiller.distill_losses``).
    """
    distill_keys = {f"loss_{name}": name for name in distill_names}
    missing = sorted(set(distill_keys) - set(losses))
    if missing:
        raise KeyError(f"the distiller returned no {missing}; keys: {sorted(losses)}")
    detection = [value for key, value in losses.items() if "loss" in key and key not in distill_keys]
    if not detection:
        raise KeyError(f"the distiller returned no detection loss; keys: {sorted(losses)}")
    terms = {DETECTION: torch.stack([value.float() for value in detection]).sum()}
    terms.update({name: losses[key] for key, name in distill_keys.items()})
    return terms


def term_gradients(distiller: nn.Module, batch: Mapping[str, Any],
                   groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[float, dict[str, float]]]:
    """One step's value and per-part gradient norm of every term (no parameter is changed).

    Args:
        distiller: a :class:`~.distillers.HarmoDistiller` (put in training mode here).
        batch: one collated training batch.
        groups: optional extra terms, each the sum of named distillation losses (e.g. a loss
            family ``{'feature': ['bkl_fpn_0', 'bkl_fpn_1']}``); a group's norm is the norm of
            its summed gradient, not the sum of its members' norms.

    Returns:
        term → ``(value, {part: gradient L2 norm})``.
    """
    distiller.train()
    terms = split_terms(distiller(batch, mode="loss"), distiller.distill_losses.keys())
    for group, members in (groups or {}).items():
        unknown = [m for m in members if m not in terms or m == DETECTION]
        if group in terms or unknown or not members:
            raise KeyError(f"group {group!r}: a new name summing distillation losses of {sorted(terms)} "
                           f"(unknown members: {unknown})")
        terms[group] = torch.stack([terms[m].float() for m in members]).sum()
    parts = parameter_parts(distiller)
    flat = [param for members in parts.values() for _, param in members]
    out = {}
    for index, (name, value) in enumerate(terms.items()):
        grads = torch.autograd.grad(value, flat, retain_graph=index < len(terms) - 1, allow_unused=True)
        norms, start = {}, 0
        for part, members in parts.items():
            squares = sum(float(g.float().pow(2).sum()) for g in grads[start:start + len(members)]
                          if g is not None)
            norms[part] = math.sqrt(squares)
            start += len(members)
        out[name] = (float(value.detach()), norms)
    return out


def summarise(steps: Sequence[Mapping[str, tuple[float, Mapping[str, float]]]]) -> dict[str, TermReport]:
    """Average :func:`term_gradients` results of several batches and add the shares."""
    if not steps:
        raise ValueError("summarise needs at least one measured batch")
    reports = {}
    for name in steps[0]:
        per_batch = {part: [step[name][1][part] for step in steps] for part in steps[0][name][1]}
        reports[name] = TermReport(
            name=name,
            value=sum(step[name][0] for step in steps) / len(steps),
            norms={part: sum(values) / len(values) for part, values in per_batch.items()},
            per_batch=per_batch)
    detection = reports[DETECTION].norms
    for report in reports.values():
        report.shares = {part: norm / detection[part] for part, norm in report.norms.items()
                         if detection.get(part, 0.0) > 0}
    return reports


def suggest_weights(reports: Mapping[str, TermReport], loss_weights: Mapping[str, float],
                    targets: Mapping[str, tuple[str, float]]) -> dict[str, float]:
    """Loss weights that give each targeted term the share it is asked for.

    Args:
        reports: :func:`summarise` output.
        loss_weights: term → its current ``loss_weight``.
        targets: term → ``(part, share)``, e.g. ``{'output': ('head', 0.5)}``.

    Returns:
        term → ``loss_weight * share / measured share`` on that part.
    """
    weights = {}
    for name, (part, share) in targets.items():
        if name not in reports or name not in loss_weights:
            raise KeyError(f"no measured term {name!r} with a loss_weight; terms: {sorted(reports)}")
        measured = reports[name].shares.get(part, 0.0)
        if measured <= 0:
            raise ValueError(f"term {name!r} has no gradient on part {part!r} (shares: "
                             f"{reports[name].shares}); pick a part it reaches")
        weights[name] = loss_weights[name] * share / measured
    return weights


def shares_table(reports: Mapping[str, TermReport], parts: Sequence[str]) -> str:
    """A markdown table: each term's mean value, gradient norms and shares of detection's."""
    header = ["term", "value"] + [f"‖g‖ {p}" for p in parts] + [f"share {p}" for p in parts]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, report in reports.items():
        cells = [name, f"{report.value:.4g}"]
        cells += [f"{report.norms.get(p, 0.0):.3g}" for p in parts]
        cells += ["" if name == DETECTION else _percent(report.shares.get(p)) for p in parts]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.3g}%"
