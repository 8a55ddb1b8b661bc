"""Optimizer with param-wise lr/decay multipliers, and the warmup + cosine schedule."""
from __future__ import annotations

import math

import torch
from torch import nn

from .runtime_config import OptimizerSpec, ScheduleSpec


def build_param_groups(model: nn.Module, spec: OptimizerSpec) -> list[dict]:
    """Split the trainable parameters of ``model`` into groups by ``custom_keys``.

    A parameter whose name contains a custom key (the longest matching key wins, as in
    mmcv's ``DefaultOptimizerConstructor``) gets ``lr * lr_mult`` and
    ``weight_decay * decay_mult``; all others the base values. Frozen parameters
    (``requires_grad=False``, e.g. a teacher) are left out.
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


def lr_factor(step: int, spec: ScheduleSpec) -> float:
    """Learning-rate multiplier at iteration ``step`` (0-based), as mmcv computes it.

    Cosine annealing from 1 to ``min_lr_ratio`` over ``max_iters``; during the first
    ``warmup_iters`` the cosine value is scaled linearly from ``warmup_ratio`` up to 1.
    """
    if spec.policy == "CosineAnnealing":
        progress = min(step, spec.max_iters) / max(spec.max_iters, 1)
        factor = spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    else:
        factor = 1.0
    if spec.warmup == "linear" and step < spec.warmup_iters:
        k = (1 - step / spec.warmup_iters) * (1 - spec.warmup_ratio)
        factor *= 1 - k
    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: ScheduleSpec
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` applying :func:`lr_factor` to every group's base lr."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, spec))
