"""HarmoDistiller on tiny RayDN / StreamPETR pairs: one step, freezing, memory, taps, adapters."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from projects.mmdet3d_plugin.engine.optim import build_param_groups
from projects.mmdet3d_plugin.engine.runtime_config import OptimizerSpec
from projects.mmdet3d_plugin.models.temporal.memory_queue import find_memory_queues
from projects.mmdet3d_plugin.registry import MODELS


class ProbeLoss(nn.Module):
    """Test loss: remembers what it was given; returns a differentiable function of ``student``."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.seen: dict = {}

    def forward(self, student: Tensor, teacher: object = None, progress: float = 0.0) -> Tensor:
        self.seen = dict(student=student, teacher=teacher, progress=progress)
        return self.loss_weight * student.float().mean()


def _probe(inputs: dict) -> dict:
    return dict(type=ProbeLoss, inputs=inputs)


def _step(distiller, batch) -> dict:
    distiller.train()
    return distiller(batch, mode="loss")


def test_step_gives_student_and_distillation_losses_and_keeps_state_dict(build_distiller, tiny) -> None:
    distiller = build_distiller()
    keys_before = list(distiller.state_dict())
    losses = _step(distiller, tiny.batch())
    assert {f"loss_bkl_fpn_{i}" for i in range(4)} | {"loss_cls", "loss_bbox", "dn_loss_cls"} <= set(losses)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert list(distiller.state_dict()) == keys_before
    assert {key.split(".")[0] for key in keys_before} == {"student", "teacher"}
    assert not [name for name, _ in distiller.named_buffers() if "fpn_convs" in name and "conv." not in name]
    assert not distiller.taps.is_recording


def test_teacher_is_frozen_in_eval_without_gradients_and_outside_the_optimizer(build_distiller, teacher_ckpt,
                                                                              tiny) -> None:
    distiller = build_distiller()
    saved = torch.load(teacher_ckpt, weights_only=True)["state_dict"]
    distiller.train()
    assert not distiller.teacher.training and distiller.student.training
    losses = _step(distiller, tiny.batch())
    sum(v for k, v in losses.items() if "loss" in k).backward()
    assert all(p.grad is None and not p.requires_grad for p in distiller.teacher.parameters())
    assert distiller.student.img_neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(torch.equal(v, saved[k]) for k, v in distiller.teacher.state_dict().items())
    groups = build_param_groups(distiller, OptimizerSpec(type="AdamW", lr=1e-3))
    names = [name for group in groups for name in group["names"]]
    assert names and not [n for n in names if not n.startswith("student.")]


def test_teacher_and_student_keep_separate_memory_queues(build_distiller, tiny) -> None:
    distiller = build_distiller()
    _step(distiller, tiny.batch())
    queues = find_memory_queues(distiller)
    assert set(queues) == {"teacher.pts_bbox_head.memory", "student.pts_bbox_head.memory"}
    teacher, student = queues["teacher.pts_bbox_head.memory"], queues["student.pts_bbox_head.memory"]
    assert teacher is not student and not teacher.is_empty and not student.is_empty
    assert not torch.equal(teacher.embedding, student.embedding)
    distiller.reset_memory()
    assert teacher.is_empty and student.is_empty


def test_predict_is_the_students_prediction(build_distiller, tiny) -> None:
    distiller = build_distiller()
    student = MODELS.build(tiny.raydn())
    student.load_state_dict(distiller.student.state_dict())
    distiller.eval()
    student.eval()
    with torch.no_grad():
        ours, plain = distiller(tiny.batch(), mode="predict"), student(tiny.batch(), mode="predict")
    assert distiller.teacher.pts_bbox_head.memory.is_empty
    for a, b in zip(ours, plain):
        assert all(torch.equal(a[key], b[key]) for key in ("boxes_3d", "scores_3d", "labels_3d"))
    with pytest.raises(ValueError, match="mode must be one of"):
        distiller(tiny.batch(), mode="tensor")


def test_progress_reaches_losses_that_take_it(build_distiller, tiny) -> None:
    distiller = build_distiller(taps={"s": dict(model="student", path="img_neck.fpn_convs.0.conv")},
                                distill_losses=dict(probe=_probe(dict(student="s"))))
    distiller.set_training_progress(5, 20)
    assert distiller.progress == 0.25
    _step(distiller, tiny.batch())
    assert distiller.distill_losses["probe"].seen["progress"] == 0.25
    distiller.set_training_progress(30, 20)
    assert distiller.progress == 1.0
    with pytest.raises(ValueError, match="max_steps"):
        distiller.set_training_progress(1, 0)


def test_pseudo_labels_and_batch_sources_reach_the_student_side(build_distiller, tiny) -> None:
    distiller = build_distiller(
        taps={"s": dict(model="student", path="img_neck.fpn_convs.0.conv")},
        distill_losses=dict(probe=_probe(dict(student="s", teacher="batch.pseudo_bboxes_3d"))),
        pseudo_label_cfg=dict(score_thr=0.0, max_num=3))
    _step(distiller, tiny.batch())
    boxes = distiller.distill_losses["probe"].seen["teacher"]
    assert len(boxes) == 2 and all(b.shape == (3, 9) and not b.requires_grad for b in boxes)


def test_pseudo_labels_drop_non_finite_and_empty_teacher_boxes(build_distiller, tiny) -> None:
    distiller = build_distiller(pseudo_label_cfg=dict(score_thr=0.5, max_num=10))
    boxes = torch.tensor([[1.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.1, 0.0, 0.0],
                          [float("nan"), 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
                          [3.0, 1.0, 0.0, 0.0, 2.0, 1.5, 0.0, 0.0, 0.0],
                          [5.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    prediction = dict(boxes_3d=boxes, scores_3d=torch.tensor([0.6, 0.9, 0.8, 0.7]),
                      labels_3d=torch.tensor([0, 1, 2, 3]))
    batch = distiller._student_batch(tiny.batch(batch=1), [prediction])
    assert batch["pseudo_labels_3d"][0].tolist() == [3, 0]
    torch.testing.assert_close(batch["pseudo_bboxes_3d"][0], boxes[[3, 0]])


def test_adapter_projects_the_student_and_trains(teacher_ckpt, tiny, tmp_path) -> None:
    distiller = MODELS.build(dict(
        type="HarmoDistiller", teacher_cfg=tiny.raydn(), teacher_ckpt=str(teacher_ckpt),
        student_cfg=tiny.raydn(embed_dims=16),
        taps=dict(s=dict(model="student", path="img_neck.fpn_convs.0.conv"),
                  t=dict(model="teacher", path="img_neck.fpn_convs.0.conv")),
        adapters=dict(proj=dict(type="ConvAdapter", in_channels=16, out_channels=32)),
        distill_losses=dict(hint=dict(type="FitNetsLoss", loss_weight=1.0, inputs=dict(student="s", teacher="t"),
                                      adapter=dict(student="proj")))))
    assert "adapters.proj.conv.weight" in distiller.state_dict()
    losses = _step(distiller, tiny.batch())
    losses["loss_hint"].backward()
    assert distiller.adapters["proj"].conv.weight.grad.abs().sum() > 0
    assert distiller.student.img_neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0


def test_call_index_and_dict_index_on_a_shared_branch(build_distiller, tiny) -> None:
    taps = dict(layer1=dict(model="teacher", path="pts_bbox_head.cls_branches.0", call=1),
                head=dict(model="teacher", path="pts_bbox_head", index="all_cls_scores"))
    distiller = build_distiller(taps=taps, distill_losses=dict(probe=_probe(dict(student="layer1", teacher="head"))))
    _step(distiller, tiny.batch())
    seen = distiller.distill_losses["probe"].seen
    assert torch.equal(seen["student"], seen["teacher"][1])
    assert not torch.equal(seen["teacher"][0], seen["teacher"][1])
    taps["layer1"]["call"] = 2
    distiller = build_distiller(taps=taps, distill_losses=dict(probe=_probe(dict(student="layer1", teacher="head"))))
    with pytest.raises(RuntimeError, match=r"ran 2 time\(s\) in this step, call index 2"):
        _step(distiller, tiny.batch())


def test_teacher_input_size_resizes_what_the_teacher_sees(build_distiller, tiny) -> None:
    taps = dict(s=dict(model="student", path="img_neck.fpn_convs.0.conv"),
                t=dict(model="teacher", path="img_neck.fpn_convs.0.conv"))
    distiller = build_distiller(taps=taps, teacher_input_size=(128, 352),
                                distill_losses=dict(probe=_probe(dict(student="s", teacher="t"))))
    _step(distiller, tiny.batch())
    seen = distiller.distill_losses["probe"].seen
    assert seen["student"].shape[-2:] == (8, 22) and seen["teacher"].shape[-2:] == (16, 44)


def test_streampetr_pair_distils_with_its_own_queues(tiny, tmp_path) -> None:
    ckpt = tiny.save(tiny.streampetr(), tmp_path / "streampetr.pth")
    taps = dict(s=dict(model="student", path="img_neck.fpn_convs.0.conv"),
                t=dict(model="teacher", path="img_neck.fpn_convs.0.conv"))
    distiller = MODELS.build(dict(
        type="HarmoDistiller", teacher_cfg=tiny.streampetr(), teacher_ckpt=str(ckpt),
        student_cfg=copy.deepcopy(tiny.streampetr()), taps=taps,
        distill_losses=dict(bkl=dict(type="BalancedKLLoss", inputs=dict(student="s", teacher="t")))))
    losses = _step(distiller, tiny.batch())
    assert torch.isfinite(losses["loss_bkl"]) and "loss_cls" in losses
    assert set(find_memory_queues(distiller)) == {"teacher.pts_bbox_head.memory", "student.pts_bbox_head.memory"}
