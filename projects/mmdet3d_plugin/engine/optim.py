"""Optimizer with param-wise lr/decay multipliers, and the warmup + cosine schedule."""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .runtime_config import OptimizerSpec, ScheduleSpec


def build_param_groups(model: nn.Module, spec: OptimizerSpec) -> list[dict]:
    """Split the trainable parameters of ``model`` into groups by ``custom_keys``.

    A parameter whose name contains a custom key (the longest matching key wins, as in
    mmcv's ``DefaultOptimizerConstructor``) gets ``lr * lr_mult`` and
    ``weight_decay * decay_mult``; all others the base values. Frozen parameters
    (``requires_grad=False``, e.g. a teacher) are left out. Each group also records its
    ``warmup_iters`` (the key's own, or None for the global warmup of the schedule).
    """
    keys = sorted(spec.custom_keys, key=len, reverse=True)
    groups: dict[str | None, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = next((k for k in keys if k in name), None)
        if key not in groups:
            mults = spec.custom_keys.get(key, {}) if key else {}
            groups[key] = {
                "params": [],
                "names": [],
                "lr": spec.lr * mults.get("lr_mult", 1.0),
                "weight_decay": spec.weight_decay * mults.get("decay_mult", 1.0),
                "custom_key": key or "",
                "warmup_iters": int(mults["warmup_iters"]) if "warmup_iters" in mults else None,
            }
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    if not groups:
        raise ValueError("The model has no trainable parameters.")
    return list(groups.values())


def build_optimizer(model: nn.Module, spec: OptimizerSpec) -> torch.optim.Optimizer:
    """Build the optimizer named by ``spec.type`` over :func:`build_param_groups`."""
    groups = build_param_groups(model, spec)
    for group in groups:
        group.pop("names")
    if spec.type == "AdamW":
        return torch.optim.AdamW(groups, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)
    if spec.type == "Adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


def lr_factor(step: int, spec: ScheduleSpec, warmup_iters: int | None = None) -> float:
    """Learning-rate multiplier at iteration ``step`` (0-based), as mmcv computes it.

    Cosine annealing from 1 to ``min_lr_ratio`` over ``max_iters``; during the first
    ``warmup_iters`` (``spec.warmup_iters`` unless a parameter group gives its own) the
    cosine value is scaled linearly from ``warmup_ratio`` up to 1.
    """
    if spec.policy == "CosineAnnealing":
        progress = min(step, spec.max_iters) / max(spec.max_iters, 1)
        factor = spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    else:
        factor = 1.0
    ramp = spec.warmup_iters if warmup_iters is None else warmup_iters
    if spec.warmup == "linear" and step < ramp:
        k = (1 - step / ramp) * (1 - spec.warmup_ratio)
        factor *= 1 - k
    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: ScheduleSpec
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` applying :func:`lr_factor` to every group's base lr, with
    the group's own ``warmup_iters`` where it has one (see :func:`build_param_groups`)."""
    lambdas = [functools.partial(lr_factor, spec=spec, warmup_iters=group.get("warmup_iters"))
               for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
