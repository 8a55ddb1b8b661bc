"""LabelledSamples: which samples' GT drives the losses, and how head inputs are restricted."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.models.detectors.labelled_samples import (LabelledSamples, head_losses_3d,
                                                                       is_dn_loss)

B, N, L, Q = 3, 2, 2, 5


def gt_batch(counts: tuple[int, ...], flags: list[bool] | None = None) -> dict:
    """GT lists with ``counts[b]`` boxes in sample b (3D and on every camera)."""
    batch = dict(
        sample_idx=[f"token{b}" for b in range(len(counts))],
        gt_bboxes_3d=[torch.full((m, 9), float(b)) for b, m in enumerate(counts)],
        gt_labels_3d=[torch.full((m,), b) for b, m in enumerate(counts)],
        gt_bboxes=[[torch.full((m, 4), float(b)) for _ in range(N)] for b, m in enumerate(counts)],
        centers2d=[[torch.full((m, 2), float(b)) for _ in range(N)] for b, m in enumerate(counts)],
    )
    if flags is not None:
        batch["gt_labelled"] = torch.tensor(flags)
    return batch


class RecordingHead(torch.nn.Module):
    """A 3D head stand-in whose ``loss`` records its inputs and returns set and DN losses."""

    def loss(self, gt_bboxes_3d, gt_labels_3d, preds):
        self.seen = (gt_bboxes_3d, gt_labels_3d, preds)
        set_loss = preds["all_cls_scores"].sum() + 1.0
        dn_loss = preds["dn_cls_scores"].sum() + 1.0
        return {"loss_cls": set_loss, "d0.loss_bbox": set_loss, "dn_loss_cls": dn_loss, "d0.dn_loss_bbox": dn_loss}


def head_outputs() -> dict:
    return dict(all_cls_scores=torch.rand(L, B, Q, 10, requires_grad=True), all_bbox_preds=torch.rand(L, B, Q, 10),
                dn=object(), dn_cls_scores=torch.rand(L, B, 4, 10, requires_grad=True))


def test_no_flag_or_all_true_is_the_identity() -> None:
    for flags in (None, [True] * B):
        batch = gt_batch((2, 0, 1), flags)
        labelled = LabelledSamples.from_batch(batch, B)
        assert labelled.is_full and labelled.index == (0, 1, 2)
        assert labelled.gt(batch["gt_bboxes_3d"]) is batch["gt_bboxes_3d"]
        feats = torch.rand(B, N, 4, 3, 3)
        images = feats.flatten(0, 1)
        assert labelled.samples(feats) is feats and labelled.images(images, N) is images
        losses = {"loss_cls": torch.tensor(2.0)}
        assert labelled.finish(losses) == losses


def test_mixed_batch_selects_the_labelled_samples() -> None:
    batch = gt_batch((2, 0, 3), [True, False, True])
    labelled = LabelledSamples.from_batch(batch, B)
    assert labelled.index == (0, 2) and labelled.any_labelled and not labelled.is_full
    assert [t[0, 0].item() for t in labelled.gt(batch["gt_bboxes_3d"])] == [0.0, 2.0]
    feats = torch.arange(B * N).float().reshape(B, N, 1)
    assert labelled.samples(feats).flatten().tolist() == [0, 1, 4, 5]
    outputs = dict(per_image=feats.reshape(B * N, 1), per_sample=torch.arange(B), levels=[feats.reshape(B * N, 1)],
                   none=None)
    picked = labelled.per_image_outputs(outputs, N)
    assert picked["per_image"].flatten().tolist() == [0, 1, 4, 5] == picked["levels"][0].flatten().tolist()
    assert picked["per_sample"].tolist() == [0, 2] and picked["none"] is None
    with pytest.raises(ValueError, match="neither B \\* N = 6"):
        labelled.per_image_outputs(dict(odd=torch.rand(4, 1)), N)


def test_head_losses_slice_set_inputs_and_keep_dn_inputs() -> None:
    head, preds = RecordingHead(), head_outputs()
    batch = gt_batch((0, 2, 3), [False, True, True])
    losses = head_losses_3d(head, batch, preds, LabelledSamples.from_batch(batch, B))
    gt_boxes, gt_labels, seen = head.seen
    assert [t.shape[0] for t in gt_boxes] == [2, 3] and [t.tolist() for t in gt_labels] == [[1, 1], [2, 2, 2]]
    assert torch.equal(seen["all_cls_scores"], preds["all_cls_scores"][:, 1:])
    assert torch.equal(seen["all_bbox_preds"], preds["all_bbox_preds"][:, 1:])
    assert seen["dn"] is preds["dn"] and seen["dn_cls_scores"] is preds["dn_cls_scores"]
    torch.testing.assert_close(losses["loss_cls"], preds["all_cls_scores"][:, 1:].sum() + 1.0)


def test_no_labelled_sample_gives_graph_zeros_except_dn() -> None:
    head, preds = RecordingHead(), head_outputs()
    batch = gt_batch((0, 0, 0), [False] * B)
    labelled = LabelledSamples.from_batch(batch, B)
    assert labelled.index == (0,) and not labelled.any_labelled
    losses = head_losses_3d(head, batch, preds, labelled)
    gt_boxes, _, seen = head.seen
    assert len(gt_boxes) == 1 and gt_boxes[0].shape == (0, 9) and seen["all_cls_scores"].shape[1] == 1
    per_camera = labelled.gt(batch["gt_bboxes"])
    assert len(per_camera) == 1 and [t.shape for t in per_camera[0]] == [(0, 4)] * N
    assert losses["loss_cls"] == 0 and losses["d0.loss_bbox"] == 0
    torch.testing.assert_close(losses["dn_loss_cls"], preds["dn_cls_scores"].sum() + 1.0)
    sum(losses.values()).backward()
    assert torch.equal(preds["all_cls_scores"].grad, torch.zeros_like(preds["all_cls_scores"]))
    assert torch.equal(preds["dn_cls_scores"].grad, torch.full_like(preds["dn_cls_scores"], 2.0))


def test_dn_loss_names() -> None:
    assert is_dn_loss("dn_loss_cls") and is_dn_loss("d3.dn_loss_bbox")
    assert not is_dn_loss("loss_cls") and not is_dn_loss("d0.loss_bbox") and not is_dn_loss("enc_loss_cls")


@pytest.mark.parametrize("flags, message", [
    (torch.tensor([1, 0, 1]), "bool tensor"),
    (torch.tensor([True, False]), "\\(3,\\) bool"),
])
def test_bad_flags_raise(flags: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabelledSamples.from_batch(dict(gt_batch((1, 1, 1)), gt_labelled=flags), B)


def test_ground_truth_on_an_unlabelled_sample_raises_with_its_token() -> None:
    batch = gt_batch((1, 2, 0), [True, False, False])
    with pytest.raises(ValueError, match="samples \\[1\\] \\(tokens \\['token1'\\]\\).*gt_bboxes_3d"):
        LabelledSamples.from_batch(batch, B)
    batch["gt_bboxes_3d"][1] = batch["gt_bboxes_3d"][1][:0]  # 2D boxes left: still a leak
    with pytest.raises(ValueError, match="gt_bboxes;"):
        LabelledSamples.from_batch(batch, B)
