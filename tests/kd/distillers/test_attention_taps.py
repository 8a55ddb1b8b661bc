"""StreamPETR distillation of attention maps: taps that switch ``need_weights`` on."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

LAST = 1  # the tiny StreamPETR has 2 decoder layers
QUERIES = 16  # 12 learnable + 4 propagated; the student's DN queries come first
ATTN = f"pts_bbox_head.transformer.decoder.layers.{LAST}.attentions.1"


def _taps(need_weights: bool = True) -> dict:
    taps = {}
    for who in ("student", "teacher"):
        w = who[0]
        taps[f"{w}_attn"] = dict(model=who, path=f"{ATTN}.attn", index=1, need_weights=need_weights)
        taps[f"{w}_cls"] = dict(model=who, path="pts_bbox_head.cls_branches.0", call=LAST)
        taps[f"{w}_box"] = dict(model=who, path="pts_bbox_head.box_codes", call=LAST)
        taps[f"{w}_ref"] = dict(model=who, path="pts_bbox_head.query_reference_points")
        taps[f"{w}_tokens"] = dict(model=who, path="pts_bbox_head.token_points")
    return taps


def _losses() -> dict:
    outputs = dict(student_cls="s_cls", student_box="s_box", teacher_cls="t_cls", teacher_box="t_box")
    return dict(
        attention=dict(type="QueryAttentionLoss", num_queries=QUERIES, matcher=dict(num_pairs=8),
                       inputs=dict(student_attn="s_attn", teacher_attn="t_attn", **outputs)),
        dense_field=dict(type="DenseQueryFieldLoss", pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0],
                         position_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0], num_points=4,
                         bev_size=(32, 32), num_queries=QUERIES,
                         inputs=dict(student_attn="s_attn", student_reference_points="s_ref",
                                     student_token_points="s_tokens", teacher_attn="t_attn",
                                     teacher_reference_points="t_ref", teacher_token_points="t_tokens")),
    )


@pytest.fixture(scope="module")
def streampetr_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import save_detector, tiny_streampetr

    return save_detector(tiny_streampetr(), tmp_path_factory.mktemp("streampetr") / "teacher.pth")


def _build(tiny, ckpt: Path, taps: dict):
    torch.manual_seed(0)
    return MODELS.build(dict(type="HarmoDistiller", teacher_cfg=tiny.streampetr(), teacher_ckpt=str(ckpt),
                             student_cfg=copy.deepcopy(tiny.streampetr()), taps=taps,
                             distill_losses=_losses()))


def test_attention_and_dense_field_losses_train_the_student(tiny, streampetr_ckpt) -> None:
    distiller = _build(tiny, streampetr_ckpt, _taps())
    distiller.train()
    losses = distiller(tiny.batch(), mode="loss")
    for name in ("loss_attention", "loss_dense_field"):
        assert torch.isfinite(losses[name]) and losses[name].item() > 0
    (losses["loss_attention"] + losses["loss_dense_field"]).backward()
    grads = [p.grad for name, p in distiller.student.named_parameters()
             if name.startswith("pts_bbox_head.transformer") and p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_need_weights_is_switched_on_while_tapped_and_restored_on_remove(tiny, streampetr_ckpt) -> None:
    distiller = _build(tiny, streampetr_ckpt, _taps())
    modules = [dict(model.named_modules())[ATTN] for model in (distiller.student, distiller.teacher)]
    assert all(module.need_weights for module in modules)
    distiller.remove_taps()
    assert not any(module.need_weights for module in modules)


def test_attention_tap_without_need_weights_names_the_switch(tiny, streampetr_ckpt) -> None:
    distiller = _build(tiny, streampetr_ckpt, _taps(need_weights=False))
    distiller.train()
    with pytest.raises(RuntimeError, match="need_weights=True"):
        distiller(tiny.batch(), mode="loss")


def test_need_weights_on_a_module_without_a_switch_fails_at_build(tiny, streampetr_ckpt) -> None:
    taps = _taps()
    taps["s_cls"]["need_weights"] = True
    with pytest.raises(KeyError, match="has a 'need_weights' switch"):
        _build(tiny, streampetr_ckpt, taps)
