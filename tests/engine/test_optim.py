"""Param-wise groups and the warmup + cosine schedule."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.engine.optim import build_optimizer, build_param_groups, build_scheduler, lr_factor
from projects.mmdet3d_plugin.engine.runtime_config import OptimizerSpec, ScheduleSpec


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.img_backbone = nn.Linear(2, 2)
        self.pts_bbox_head = nn.Linear(2, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_custom_keys_scale_lr_and_skip_frozen_parameters():
    spec = OptimizerSpec(type="AdamW", lr=1e-3, weight_decay=0.01,
                         custom_keys={"img_backbone": {"lr_mult": 0.1, "decay_mult": 0.0}})
    groups = {g["custom_key"]: g for g in build_param_groups(Tiny(), spec)}
    assert groups["img_backbone"]["lr"] == pytest.approx(1e-4)
    assert groups["img_backbone"]["weight_decay"] == 0.0
    assert groups[""]["lr"] == pytest.approx(1e-3)
    names = [n for g in groups.values() for n in g["names"]]
    assert sorted(names) == ["img_backbone.bias", "img_backbone.weight",
                             "pts_bbox_head.bias", "pts_bbox_head.weight"]


def test_schedule_matches_mmcv_formulas():
    spec = ScheduleSpec(max_iters=100, warmup="linear", warmup_iters=10, warmup_ratio=1 / 3, min_lr_ratio=1e-3)
    assert lr_factor(0, spec) == pytest.approx(1 / 3)
    cosine_5 = 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * 5 / 100))
    assert lr_factor(5, spec) == pytest.approx(cosine_5 * (1 - (1 - 5 / 10) * (2 / 3)))
    assert lr_factor(50, spec) == pytest.approx(1e-3 + (1 - 1e-3) * 0.5)
    assert lr_factor(100, spec) == pytest.approx(1e-3)


def test_scheduler_applies_per_group_base_lr():
    spec = OptimizerSpec(type="AdamW", lr=1e-3, custom_keys={"img_backbone": {"lr_mult": 0.5}})
    optimizer = build_optimizer(Tiny(), spec)
    scheduler = build_scheduler(optimizer, ScheduleSpec(max_iters=10))
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    lrs = sorted(g["lr"] for g in optimizer.param_groups)
    assert lrs[0] == pytest.approx(0.5 * lrs[1])
    assert lrs[1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_model_without_trainable_parameters_is_an_error():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        build_param_groups(model, OptimizerSpec(type="AdamW", lr=1e-3))


def _backbone_warmup_optimizer(warmup_iters: int) -> torch.optim.Optimizer:
    spec = OptimizerSpec(type="AdamW", lr=1e-3,
                         custom_keys={"img_backbone": {"lr_mult": 0.1, "warmup_iters": warmup_iters}})
    return build_optimizer(Tiny(), spec)


def test_group_warmup_iters_gives_that_group_a_longer_linear_ramp():
    """Global warmup 10 iterations, the backbone group 40: each group's lr at chosen steps."""
    schedule = ScheduleSpec(max_iters=100, warmup="linear", warmup_iters=10, warmup_ratio=1 / 3,
                            min_lr_ratio=1e-3)
    optimizer = _backbone_warmup_optimizer(40)
    scheduler = build_scheduler(optimizer, schedule)
    groups = {g["custom_key"]: g for g in optimizer.param_groups}
    assert groups["img_backbone"]["warmup_iters"] == 40 and groups[""]["warmup_iters"] is None

    def cosine(step: int) -> float:
        return 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * step / 100))

    def ramp(step: int, length: int) -> float:
        return 1 - (1 - step / length) * (2 / 3) if step < length else 1.0

    seen = {}
    for step in range(60):
        seen[step] = (groups[""]["lr"], groups["img_backbone"]["lr"])
        optimizer.step()
        scheduler.step()
    for step in (0, 5, 10, 20, 39, 40, 59):
        head, backbone = seen[step]
        assert head == pytest.approx(1e-3 * cosine(step) * ramp(step, 10)), step
        assert backbone == pytest.approx(1e-4 * cosine(step) * ramp(step, 40)), step
    assert seen[0][1] == pytest.approx(1e-4 / 3)  # both start at warmup_ratio
    assert seen[20][0] == pytest.approx(1e-3 * cosine(20))  # head warmed up, backbone not yet
    assert seen[20][1] < 0.1 * seen[20][0]


def test_group_warmup_state_survives_a_scheduler_state_dict_round_trip():
    schedule = ScheduleSpec(max_iters=100, warmup="linear", warmup_iters=10, warmup_ratio=1 / 3)
    optimizer = _backbone_warmup_optimizer(40)
    scheduler = build_scheduler(optimizer, schedule)
    for _ in range(15):
        optimizer.step()
        scheduler.step()
    resumed_optimizer = _backbone_warmup_optimizer(40)
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed = build_scheduler(resumed_optimizer, schedule)
    resumed.load_state_dict(scheduler.state_dict())
    for _ in range(5):
        for opt, sched in ((optimizer, scheduler), (resumed_optimizer, resumed)):
            opt.step()
            sched.step()
    assert [g["lr"] for g in resumed_optimizer.param_groups] == pytest.approx(
        [g["lr"] for g in optimizer.param_groups])
