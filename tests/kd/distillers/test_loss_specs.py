"""Selecting distillation terms for ablations: ``enabled_losses``."""
from __future__ import annotations

import pytest

from projects.mmdet3d_plugin.kd.distillers.loss_specs import select_enabled

TAPS = {"s_fpn": dict(model="student", path="img_neck"), "t_fpn": dict(model="teacher", path="img_neck"),
        "s_cls": dict(model="student", path="pts_bbox_head.cls_branches.0"),
        "t_cls": dict(model="teacher", path="pts_bbox_head.cls_branches.0")}
ADAPTERS = {"proj": dict(type="ConvAdapter", in_channels=8, out_channels=8)}
LOSSES = {
    "bkl": dict(type="BalancedKLLoss", inputs=dict(student="s_fpn", teacher="t_fpn")),
    "fit": dict(type="FitNetsLoss", inputs=dict(student="s_fpn", teacher="t_fpn"), adapter=dict(student="proj")),
    "out": dict(type="OutputDistillLoss", inputs=dict(student_cls="s_cls", teacher_cls="t_cls",
                                                      student_box="batch.gt_bboxes_3d", teacher_box="t_cls")),
}


def test_none_keeps_everything():
    assert select_enabled(LOSSES, TAPS, ADAPTERS, None) == (LOSSES, TAPS, ADAPTERS)


def test_subset_drops_unused_taps_and_adapters():
    losses, taps, adapters = select_enabled(LOSSES, TAPS, ADAPTERS, ["bkl"])
    assert list(losses) == ["bkl"] and sorted(taps) == ["s_fpn", "t_fpn"] and adapters == {}
    losses, taps, adapters = select_enabled(LOSSES, TAPS, ADAPTERS, ["fit", "out"])
    assert sorted(losses) == ["fit", "out"] and sorted(taps) == sorted(TAPS) and list(adapters) == ["proj"]


def test_unknown_name_is_an_error_with_close_matches():
    with pytest.raises(KeyError, match="bkl"):
        select_enabled(LOSSES, TAPS, ADAPTERS, ["bkl_"])
