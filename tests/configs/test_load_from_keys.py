"""What an R50 RayDN checkpoint gives the R18 / R34 students (the table in docs/model_zoo.md),
from the pinned state-dict keys and shapes of the shipped configs."""
from __future__ import annotations

import pytest

from projects.mmdet3d_plugin.core.checkpoint_match import match_state_dicts

from .test_raydn_configs import _pinned


@pytest.mark.parametrize("depth, backbone, skipped", [(18, (97, 120), 23), (34, (185, 216), 31)])
def test_r50_checkpoint_into_student(depth, backbone, skipped) -> None:
    report = match_state_dicts(_pinned(f"raydn_r{depth}_704_bs2_seq_428q_nui_24e"),
                               _pinned("raydn_r50_704_bs2_seq_428q_nui_60e"))
    counts = report.by_prefix()
    assert (counts["img_backbone"].loaded, counts["img_backbone"].model_tensors) == backbone
    assert counts["img_backbone"].skipped == skipped and report.missing == ()
    assert (counts["img_neck"].loaded, counts["img_neck"].model_tensors) == (11, 14)
    assert sorted(k for k in report.skipped if k.startswith("img_neck")) == [
        f"img_neck.lateral_convs.{i}.conv.weight" for i in range(3)]
    for head in ("img_roi_head", "pts_bbox_head"):
        assert counts[head].loaded == counts[head].model_tensors and counts[head].skipped == 0
    # every backbone tensor skipped is a block's first conv or a downsample branch
    assert all(".conv1." in k or ".downsample." in k for k in report.skipped if k.startswith("img_backbone"))
    assert "img_backbone.conv1.weight" in report.loaded and "img_backbone.layer4.1.conv2.weight" in report.loaded
