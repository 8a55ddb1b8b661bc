"""Gradient shares: per-term gradient norms by student part, shares and suggested weights."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.kd.gradient_shares import (DETECTION, parameter_parts, shares_table,
                                                        split_terms, suggest_weights, summarise,
                                                        term_gradients)


class _Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.img_backbone = nn.Linear(1, 1, bias=False)
        self.img_neck = nn.Linear(1, 1, bias=False)
        self.pts_bbox_head = nn.Linear(1, 1, bias=False)


class _Distiller(nn.Module):
    """Losses with known gradients: detection 3·b + 4·h, 'feat' = w·n, 'out' = 2·h."""

    def __init__(self, feat_weight: float = 1.0) -> None:
        super().__init__()
        self.student = _Student()
        self.distill_losses = nn.ModuleDict({"feat": nn.Identity(), "out": nn.Identity()})
        self.frozen = nn.Linear(1, 1)
        self.frozen.requires_grad_(False)
        self.feat_weight = feat_weight
        for module in self.student.children():
            nn.init.ones_(module.weight)

    def forward(self, batch: dict, mode: str = "loss") -> dict:
        b, n, h = (m.weight.sum() for m in self.student.children())
        return {"loss_cls": 3 * b + 4 * h, "d0.loss_cls": 0 * h, "loss_feat": self.feat_weight * n,
                "loss_out": 2 * h, "frames": torch.tensor(1.0)}


def test_norms_by_part_and_groups_without_changing_parameters() -> None:
    distiller = _Distiller()
    before = [p.clone() for p in distiller.parameters()]
    step = term_gradients(distiller, {}, groups={"both": ["feat", "out"]})
    assert step[DETECTION] == (7.0, {"backbone": 3.0, "neck": 0.0, "head": 4.0})
    assert step["feat"][1] == {"backbone": 0.0, "neck": 1.0, "head": 0.0}
    assert step["both"][1] == {"backbone": 0.0, "neck": 1.0, "head": 2.0}
    assert all(torch.equal(a, b) for a, b in zip(before, distiller.parameters()))
    assert all(p.grad is None for p in distiller.parameters())


def test_summary_shares_and_suggested_weights_are_linear() -> None:
    steps = [term_gradients(_Distiller(w), {}) for w in (1.0, 3.0)]
    reports = summarise(steps)
    assert reports["feat"].norms["neck"] == pytest.approx(2.0)
    assert reports["feat"].per_batch["neck"] == pytest.approx([1.0, 3.0])
    assert "neck" not in reports["feat"].shares  # detection has no gradient there
    assert reports["out"].shares["head"] == pytest.approx(0.5)
    assert suggest_weights(reports, {"out": 1.0}, {"out": ("head", 0.25)}) == {"out": pytest.approx(0.5)}
    with pytest.raises(ValueError, match="no gradient on part 'backbone'"):
        suggest_weights(reports, {"out": 1.0}, {"out": ("backbone", 0.5)})
    table = shares_table(reports, ["backbone", "head"])
    assert "| out | 2 |" in table and "50%" in table


def test_bad_inputs_are_named() -> None:
    with pytest.raises(KeyError, match="loss_missing"):
        split_terms({"loss_cls": torch.tensor(1.0)}, ["missing"])
    with pytest.raises(KeyError, match="no detection loss"):
        split_terms({"loss_feat": torch.tensor(1.0)}, ["feat"])
    with pytest.raises(KeyError, match="unknown members"):
        term_gradients(_Distiller(), {}, groups={"g": ["nope"]})
    distiller = _Distiller()
    distiller.stray = nn.Linear(1, 1)
    with pytest.raises(KeyError, match="stray.weight"):
        parameter_parts(distiller)
    assert math.isfinite(summarise([term_gradients(_Distiller(), {})])[DETECTION].value)
