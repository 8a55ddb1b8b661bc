"""extract_student_state_dict: keep student.* without the prefix, group everything dropped."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.kd.student_conversion import extract_student_state_dict


def test_student_keys_are_kept_and_the_rest_grouped() -> None:
    state = {
        "student.img_neck.fpn_convs.0.conv.weight": torch.ones(2),
        "student.pts_bbox_head.pc_range": torch.zeros(6),
        "teacher.img_neck.fpn_convs.0.conv.weight": torch.zeros(2),
        "adapters.proj.conv.weight": torch.zeros(1),
        "distill_losses.fgd.student_context.conv.weight": torch.zeros(1),
        "student_img_neck_fpn_convs_0_conv": torch.zeros(3),
    }
    student, dropped = extract_student_state_dict(state)
    assert list(student) == ["img_neck.fpn_convs.0.conv.weight", "pts_bbox_head.pc_range"]
    assert student["img_neck.fpn_convs.0.conv.weight"] is state["student.img_neck.fpn_convs.0.conv.weight"]
    assert dropped == {"teacher": ["teacher.img_neck.fpn_convs.0.conv.weight"],
                       "adapters": ["adapters.proj.conv.weight"],
                       "distill_losses": ["distill_losses.fgd.student_context.conv.weight"],
                       "other": ["student_img_neck_fpn_convs_0_conv"]}


def test_a_plain_detector_state_dict_is_refused() -> None:
    with pytest.raises(CheckpointError, match="not a distiller checkpoint: no 'student.\\*' keys"):
        extract_student_state_dict({"img_neck.fpn_convs.0.conv.weight": torch.ones(2)})
