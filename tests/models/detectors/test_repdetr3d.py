"""RepDetr3D (RayDN) end to end on CPU with tiny dimensions."""
from __future__ import annotations

import copy

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import contract_batch
from tests.fixtures.tiny_models import tiny_raydn, without_randomness

EMBED = 32


def tiny_model_cfg(num_cams: int = 2, with_roi_head: bool = True) -> dict:
    """The tiny RayDN (embed_dims 32, 2 layers, 8 queries, ResNet18 + FPN) with a YOLOX 2D head."""
    roi_head = dict(
        type="YOLOXHeadCustom", num_classes=10, in_channels=EMBED, feat_channels=EMBED,
        strides=[8, 16, 32, 64],
        train_cfg=dict(assigner=dict(type="SimOTAAssigner", center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type="nms", iou_threshold=0.65)))
    return dict(tiny_raydn(num_cams), num_frame_head_grads=1, num_frame_backbone_grads=1, num_frame_losses=1,
                img_roi_head=roi_head if with_roi_head else None)


def make_batch(batch: int = 2, num_cams: int = 2, prev_exists: bool = False, t: float = 0.0) -> dict:
    """A contract batch with GT in front of camera 0 in all samples but the last, images seeded by ``t``."""
    return contract_batch(batch, num_cams, prev_exists, t, seed=int(t * 10), labelled_samples=batch - 1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS.build(tiny_model_cfg())


def test_loss_mode_backward_reaches_backbone(model):
    model.train()
    losses = model(make_batch(), mode="loss")
    expected = {"loss_cls", "loss_bbox", "d0.loss_cls", "d0.loss_bbox", "dn_loss_cls", "dn_loss_bbox",
                "d0.dn_loss_cls", "d0.dn_loss_bbox", "enc_loss_cls", "enc_loss_iou", "enc_loss_obj",
                "enc_loss_bbox", "enc_loss_centers2d"}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    model.zero_grad()
    sum(v for k, v in losses.items() if "loss" in k).backward()
    grad = model.img_backbone.layer4[0].conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # Layer 0 sees all-zero queries on a scene's first frame: its offsets learn via the bias.
    dfa = model.pts_bbox_head.transformer.decoder.layers[0].attentions[1]
    assert dfa.learnable_fc.bias.grad.abs().sum() > 0
    assert sum(conv.weight.grad.abs().sum() for conv in model.img_roi_head.multi_level_conv_centers2d) > 0


def test_predict_shapes_and_memory_stream(model):
    model.eval()
    with torch.no_grad():
        first = model(make_batch(prev_exists=False, t=0.0), mode="predict")
        memory = model.pts_bbox_head.memory
        assert memory.embedding.shape == (2, 12, EMBED)
        second = model(make_batch(prev_exists=True, t=0.5), mode="predict")
    for out in first + second:
        assert out["boxes_3d"].shape[1] == 9 and out["boxes_3d"].shape[0] == out["scores_3d"].shape[0]
        assert out["labels_3d"].dtype == torch.int64
    # Between frames entries are stored with timestamp -t_push: 4 pushed at t=0.5, 4 at t=0.
    assert torch.allclose(memory.timestamp[:, :4], torch.full((2, 4, 1), -0.5, dtype=torch.float64))
    assert torch.allclose(memory.timestamp[:, 4:8], torch.zeros(2, 4, 1, dtype=torch.float64))


def test_memory_reset_on_new_scene(model):
    model.eval()
    with torch.no_grad():
        model(make_batch(prev_exists=False, t=0.0), mode="predict")
        model(make_batch(prev_exists=True, t=0.5), mode="predict")
        head = model.pts_bbox_head
        prev_exists = torch.tensor([True, False])
        head._pre_update_memory(prev_exists, torch.tensor([1.0, 1.0], dtype=torch.float64),
                                torch.eye(4).repeat(2, 1, 1))
    memory = head.memory
    assert memory.embedding[1].abs().sum() == 0 and memory.embedding[0].abs().sum() > 0
    pseudo = head.pseudo_reference_points.weight * (head.pc_range[3:] - head.pc_range[:3]) + head.pc_range[:3]
    assert torch.allclose(memory.reference_point[1, :4], pseudo)
    model.reset_memory()
    assert memory.is_empty


def test_memory_has_no_hidden_reset_between_modes(model):
    model.eval()
    with torch.no_grad():
        model(make_batch(t=0.0), mode="predict")
    pushed = model.pts_bbox_head.memory.state()["embedding"]
    model.train()
    model(make_batch(prev_exists=True, t=0.5), mode="loss")
    topk = 4
    # The predict frame's entries were kept and moved one push (topk entries) down.
    assert torch.equal(model.pts_bbox_head.memory.embedding[:, topk:2 * topk], pushed[:, :topk])


def test_unsupported_arguments_raise():
    cfg = tiny_model_cfg()
    cfg["num_frame_losses"] = 2
    with pytest.raises(ValueError, match="num_frame_losses=2"):
        MODELS.build(cfg)
    cfg = tiny_model_cfg()
    cfg["pts_bbox_head"]["num_querys"] = 3
    with pytest.raises(TypeError):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match="mode"):
        MODELS.build(tiny_model_cfg(with_roi_head=False))(make_batch(), mode="test")


# ---------------------------------------------------------------- label-scarce training
def deterministic_model() -> torch.nn.Module:
    """The tiny model without dropout and grid mask: its losses depend only on the seed."""
    cfg = without_randomness(tiny_model_cfg())
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def unlabel(batch: dict, slots: list[int]) -> dict:
    """The batch with ``gt_labelled`` False (and the GT emptied, as the dataset does) at ``slots``."""
    for key in ("gt_bboxes_3d", "gt_labels_3d"):
        batch[key] = [v[:0] if b in slots else v for b, v in enumerate(batch[key])]
    for key in ("gt_bboxes", "gt_labels", "centers2d", "depths"):
        batch[key] = [[v[:0] for v in cams] if b in slots else cams for b, cams in enumerate(batch[key])]
    batch["gt_labelled"] = torch.tensor([b not in slots for b in range(batch["img"].shape[0])])
    return batch


def sample(batch: dict, b: int) -> dict:
    """Sample ``b`` of a batch as a batch of one, without ``gt_labelled``."""
    return {k: v[b:b + 1] for k, v in batch.items() if k != "gt_labelled"}


def seeded_losses(model: torch.nn.Module, batch: dict) -> dict:
    torch.manual_seed(1)
    return model(batch, mode="loss")


def test_unlabelled_sample_adds_nothing_to_the_losses() -> None:
    model = deterministic_model()
    alone_model, background_model = copy.deepcopy(model), copy.deepcopy(model)
    batch = unlabel(make_batch(), [1])
    mixed = seeded_losses(model, batch)
    alone = seeded_losses(alone_model, sample(batch, 0))
    assert set(mixed) == set(alone)
    for key in mixed:
        torch.testing.assert_close(mixed[key], alone[key], rtol=1e-6, atol=1e-6, msg=key)
    # Without the flag the empty sample is "background everywhere": different set losses.
    background = seeded_losses(background_model, {k: v for k, v in batch.items() if k != "gt_labelled"})
    assert not torch.allclose(background["loss_cls"], alone["loss_cls"])
    # The head still ran on both samples: both memory slots were written.
    assert (model.pts_bbox_head.memory.embedding.abs().sum(dim=(1, 2)) > 0).all()


def test_all_unlabelled_batch_gives_graph_zeros_and_pseudo_label_dn_losses() -> None:
    model = deterministic_model()
    labelled_keys = set(seeded_losses(copy.deepcopy(model), make_batch()))
    batch = unlabel(make_batch(), [0, 1])
    batch["pseudo_bboxes_3d"] = [make_batch()["gt_bboxes_3d"][0], torch.zeros(0, 9)]
    batch["pseudo_labels_3d"] = [torch.tensor([0, 8]), torch.zeros(0, dtype=torch.long)]
    losses = seeded_losses(model, batch)
    assert set(losses) == labelled_keys
    for key, value in losses.items():
        assert value.grad_fn is not None, key
        assert (value > 0) if "dn_loss" in key else (value == 0), key
    model.zero_grad()
    sum(losses.values()).backward()
    assert model.img_backbone.layer4[0].conv1.weight.grad.abs().sum() > 0  # through the DN losses
    assert all(conv.weight.grad is not None for conv in model.img_roi_head.multi_level_conv_cls)


def test_flag_all_true_is_the_batch_without_the_flag() -> None:
    model = deterministic_model()
    without = seeded_losses(copy.deepcopy(model), make_batch())
    flagged = make_batch()
    flagged["gt_labelled"] = torch.tensor([True, True])
    with_flag = seeded_losses(model, flagged)
    assert set(with_flag) == set(without)
    assert all(torch.equal(with_flag[key], without[key]) for key in without)


def test_unlabelled_sample_with_ground_truth_raises() -> None:
    batch = make_batch()
    batch["gt_labelled"] = torch.tensor([False, True])
    with pytest.raises(ValueError, match="gt_labelled=False but carry gt_bboxes_3d"):
        deterministic_model()(batch, mode="loss")


def _grad_norm(model: torch.nn.Module, batch: dict) -> float:
    losses = model(batch, mode="loss")
    model.zero_grad()
    sum(value for key, value in losses.items() if "loss" in key).backward()
    return float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm())


def test_first_frame_gradient_at_initialisation_is_not_a_spike():
    # With an all-zero initial shift in ego_pose_memory, every query of a scene's first frame
    # had the same zero content, and the post-norm LayerNorms amplified its gradient ~1e4x.
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    model.train()
    first = _grad_norm(model, make_batch(prev_exists=False, t=0.0))
    later = [_grad_norm(model, make_batch(prev_exists=True, t=0.5 * k)) for k in (1, 2)]
    assert first < 5 * max(later), (first, later)
