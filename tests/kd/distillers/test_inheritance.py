"""Inheritance: the student starts shared parts from the teacher's weights, or refuses clearly."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.distillers.inheritance import check_inherit, inherit_from_teacher


def tensors(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k.startswith(prefix + ".")}


def test_inherited_parts_equal_the_teacher_and_the_rest_stays_the_students(build_distiller) -> None:
    plain = build_distiller()
    distiller = build_distiller(inherit=["pts_bbox_head", "img_neck.fpn_convs"])
    for prefix in ("pts_bbox_head", "img_neck.fpn_convs"):
        got, teacher = tensors(distiller.student, prefix), tensors(distiller.teacher, prefix)
        assert got.keys() == teacher.keys() and got
        assert all(torch.equal(got[k], teacher[k]) for k in got), prefix
        before = tensors(plain.student, prefix)
        assert any(not torch.equal(before[k], got[k]) for k in got), "the test needs different inits"
    for prefix in ("img_backbone", "img_neck.lateral_convs"):
        assert all(torch.equal(v, tensors(distiller.student, prefix)[k])
                   for k, v in tensors(plain.student, prefix).items()), prefix


def test_inherited_weights_are_the_students_own_trainable_copy(build_distiller) -> None:
    distiller = build_distiller(inherit=["pts_bbox_head"])
    weight = distiller.student.pts_bbox_head.reg_branches[0][0].weight
    teacher_weight = distiller.teacher.pts_bbox_head.reg_branches[0][0].weight
    assert weight.requires_grad and not teacher_weight.requires_grad
    with torch.no_grad():
        weight.add_(1.0)
    assert not torch.equal(weight, teacher_weight)


def test_init_weights_keeps_the_inherited_parts(build_distiller) -> None:
    distiller = build_distiller(inherit=["img_neck.fpn_convs"])
    with torch.no_grad():
        for param in distiller.student.img_neck.fpn_convs.parameters():
            param.zero_()
    distiller.init_weights()
    got, teacher = tensors(distiller.student, "img_neck.fpn_convs"), tensors(distiller.teacher, "img_neck.fpn_convs")
    assert all(torch.equal(got[k], teacher[k]) for k in got)


def test_inheriting_nothing_changes_nothing(build_distiller) -> None:
    assert build_distiller(inherit=[]).inherit == ()
    plain, none = build_distiller(), build_distiller(inherit=None)
    assert all(torch.equal(v, none.state_dict()[k]) for k, v in plain.state_dict().items())


def test_unknown_part_lists_close_matches(build_distiller) -> None:
    with pytest.raises(KeyError, match=r"inherit 'pts_bbox_heads' \(student\).*pts_bbox_head"):
        build_distiller(inherit=["pts_bbox_heads"])


def test_parts_that_do_not_fit_are_named_not_partly_copied(build_distiller, tiny) -> None:
    with pytest.raises(ValueError, match=r"(?s)inherit 'pts_bbox_head'.*shape mismatches") as err:
        build_distiller(student_cfg=tiny.raydn(embed_dims=16), inherit=["pts_bbox_head"])
    assert "expected [" in str(err.value)


def test_bad_inherit_values_are_refused() -> None:
    assert check_inherit(["a.b", "c"]) == ("a.b", "c")
    with pytest.raises(TypeError, match="list of module paths"):
        check_inherit("pts_bbox_head")
    with pytest.raises(ValueError, match="empty module path"):
        check_inherit([""])
    with pytest.raises(ValueError, match=r"\['img_roi_head'\] listed more than once"):
        check_inherit(["img_roi_head", "pts_bbox_head", "img_roi_head"])
    with pytest.raises(ValueError, match="'img_neck.fpn_convs' is inside 'img_neck'"):
        check_inherit(["img_neck", "img_neck.fpn_convs"])


def test_copy_returns_the_keys_it_copied() -> None:
    student = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    teacher = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    teacher[1].running_mean.fill_(5.0)
    assert inherit_from_teacher(student, teacher, ["1"]) == [
        "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert torch.equal(student[1].running_mean, torch.full((3,), 5.0))
    assert not torch.equal(student[0].weight, teacher[0].weight)
