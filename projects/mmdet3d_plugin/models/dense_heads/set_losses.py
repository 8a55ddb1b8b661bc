"""Targets and losses of the StreamPETR / RayDN 3D query heads (set prediction + denoising).

Set losses follow DETR: each sample's queries are matched one-to-one to its ground truth
by a Hungarian assigner; matched queries learn the class and the box code, the rest learn
background. Denoising queries are supervised directly by the GT box they were made from.
All losses stay finite when a sample (or the whole batch) holds no box.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ...core.bbox.assigners.hungarian_matching import flat_match_indices, indices_to_device
from ...core.bbox.util import normalize_bbox
from ...registry import MODELS, TASK_UTILS
from ..denoising.denoising import DenoisingQueries

TRAIN_CFG_KEYS = ("assigner", "grid_size", "voxel_size", "point_cloud_range", "out_size_factor")


def build_set_losses(owner: str, loss_cls: Optional[dict], loss_bbox: Optional[dict],
                     loss_iou: Optional[dict], train_cfg: Optional[dict]
                     ) -> tuple[nn.Module, nn.Module, Optional[object]]:
    """Build ``(loss_cls, loss_bbox, assigner)`` of a query head from its configs.

    Args:
        owner: the head's class name (used in messages).
        loss_cls: focal loss config (sigmoid only; default upstream's weight-2 focal loss).
        loss_bbox: box-code loss config (default an L1 loss of weight 0.25).
        loss_iou: accepted for config compatibility; must have ``loss_weight=0`` (the heads
            have no 3D IoU loss).
        train_cfg: needs an ``assigner`` (mmdet3d's other ``pts`` keys are accepted);
            without it the head can predict but not compute losses (assigner None).
    """
    loss_cls = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25,
                    loss_weight=2.0) if loss_cls is None else loss_cls
    if not loss_cls.get("use_sigmoid", True):
        raise ValueError(f"{owner} supports only sigmoid classification "
                         f"(loss_cls.use_sigmoid=True), got loss_cls={loss_cls}")
    if loss_iou is not None and loss_iou.get("loss_weight", 1.0) != 0:
        raise ValueError(f"{owner} has no 3D IoU loss; loss_iou must have loss_weight=0, got {loss_iou}")
    cls_module = MODELS.build(copy.deepcopy(loss_cls))
    bbox_module = MODELS.build(copy.deepcopy(
        dict(type="L1Loss", loss_weight=0.25) if loss_bbox is None else loss_bbox))
    if not train_cfg:
        return cls_module, bbox_module, None
    unknown = sorted(set(train_cfg) - set(TRAIN_CFG_KEYS))
    if unknown or "assigner" not in train_cfg:
        raise ValueError(f"{owner} train_cfg needs 'assigner' and accepts only "
                         f"{list(TRAIN_CFG_KEYS)}; got keys {sorted(train_cfg)}")
    return cls_module, bbox_module, TASK_UTILS.build(copy.deepcopy(train_cfg["assigner"]))


def reduce_mean(value: Tensor) -> Tensor:
    """Average a tensor over the distributed group (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return value


def avg_factor(value: float, like: Tensor, over_ranks: bool) -> float:
    """``value`` rounded to ``like``'s dtype, averaged over the distributed group when
    ``over_ranks``, clamped at 1: ``max(float(reduce_mean(like.new_tensor([value]))), 1)``.

    The device is touched only when a distributed group exists, so a single process builds
    its loss normalisers without a host <-> device round trip.
    """
    if over_ranks and dist.is_available() and dist.is_initialized():
        return max(float(reduce_mean(like.new_tensor([value]))), 1.0)
    return max(float(torch.tensor([value], dtype=like.dtype)), 1.0)


@dataclass
class SetTargets:
    """Matching targets of one decoder layer for the whole batch.

    Attributes:
        labels: ``(B * Q,)`` int64 class per query, ``num_classes`` for background.
        pos_index: ``(P,)`` flat indices (into ``B * Q``) of the matched queries.
        pos_gt_bboxes: ``(P, 9)`` GT box of each matched query (box layout).
        num_pos: ``P``; num_neg: ``B * Q - P``.
    """

    labels: Tensor
    pos_index: Tensor
    pos_gt_bboxes: Tensor
    num_pos: int
    num_neg: int


def assign_set_targets(
    assigner: object,
    all_cls_scores: Tensor,
    all_bbox_preds: Tensor,
    gt_bboxes_3d: Sequence[Tensor],
    gt_labels_3d: Sequence[Tensor],
    num_classes: int,
    match_costs: Tensor,
    match_with_velo: bool,
) -> list[SetTargets]:
    """Match every sample's queries to its GT boxes, for every decoder layer at once.

    One device -> host copy of all (layer, sample) costs, one host -> device copy of all
    matched indices; the number of positives is known on the host.

    Args:
        assigner: a Hungarian assigner with ``assign_layers`` (see
            :meth:`~...core.bbox.assigners.hungarian_assigner_3d.HungarianAssigner3D.assign_layers`).
        all_cls_scores: ``(L, B, Q, C)`` logits; all_bbox_preds: ``(L, B, Q, 10)`` box codes.
        gt_bboxes_3d: B tensors ``(M_b, 9)``; gt_labels_3d: B tensors ``(M_b,)``.
        num_classes: background label.
        match_costs: ``(10,)`` per-code weights of the matching cost.
        match_with_velo: include velocities in the matching cost.

    Returns:
        The :class:`SetTargets` of every layer.
    """
    batch, num_query = all_cls_scores.shape[1:3]
    device = all_cls_scores.device
    gt_boxes = [boxes.to(all_bbox_preds) for boxes in gt_bboxes_3d]
    gt_labels = [labels.to(device).long() for labels in gt_labels_3d]
    matchings = assigner.assign_layers(all_bbox_preds.detach(), all_cls_scores.detach(), gt_boxes,
                                       gt_labels, code_weights=match_costs, with_velo=match_with_velo)
    flat = [flat_match_indices(layer, num_query, [len(labels) for labels in gt_labels])
            for layer in matchings]
    indices = indices_to_device([index for layer in flat for index in layer], device)
    all_gt_boxes, all_gt_labels = torch.cat(gt_boxes), torch.cat(gt_labels)
    targets = []
    for layer, (pos_host, _) in enumerate(flat):
        pos_index, gt_index = indices[2 * layer], indices[2 * layer + 1]
        labels = torch.full((batch * num_query,), num_classes, dtype=torch.long, device=device)
        labels[pos_index] = all_gt_labels[gt_index]
        targets.append(SetTargets(labels=labels, pos_index=pos_index, pos_gt_bboxes=all_gt_boxes[gt_index],
                                  num_pos=len(pos_host), num_neg=batch * num_query - len(pos_host)))
    return targets


def box_code_loss(
    loss_bbox: nn.Module, preds: Tensor, gt_bboxes: Tensor, code_weights: Tensor, avg_factor: float
) -> Tensor:
    """Weighted regression loss of box codes ``(P, 10)`` against boxes ``(P, 9)``.

    Targets whose code is not finite (a zero size) are skipped, as upstream.
    """
    targets = normalize_bbox(gt_bboxes)
    finite = torch.isfinite(targets).all(dim=-1)
    weights = code_weights.to(preds).expand_as(preds)
    loss = loss_bbox(preds[finite], targets[finite], weights[finite], avg_factor=avg_factor)
    return torch.nan_to_num(loss)


def set_prediction_losses(
    cls_scores: Tensor,
    bbox_preds: Tensor,
    targets: SetTargets,
    loss_cls: nn.Module,
    loss_bbox: nn.Module,
    code_weights: Tensor,
    sync_cls_avg_factor: bool,
) -> tuple[Tensor, Tensor]:
    """Classification and box losses of one decoder layer.

    Args:
        cls_scores: ``(B, Q, C)``; bbox_preds: ``(B, Q, 10)``.

    Returns:
        ``(loss_cls, loss_bbox)`` scalars.
    """
    cls_flat = cls_scores.reshape(-1, cls_scores.shape[-1])
    loss_c = loss_cls(cls_flat, targets.labels, torch.ones_like(targets.labels, dtype=cls_flat.dtype),
                      avg_factor=avg_factor(float(targets.num_pos), cls_flat, sync_cls_avg_factor))
    num_pos = avg_factor(float(targets.num_pos), cls_flat, True)
    box_flat = bbox_preds.reshape(-1, bbox_preds.shape[-1])
    loss_b = box_code_loss(loss_bbox, box_flat[targets.pos_index], targets.pos_gt_bboxes,
                           code_weights, num_pos)
    return torch.nan_to_num(loss_c), loss_b


def gather_dn_predictions(dn: DenoisingQueries, cls_scores: Tensor, bbox_preds: Tensor) -> tuple[Tensor, Tensor]:
    """Predictions of the supervised DN copies.

    Args:
        cls_scores: ``(B, pad_size, C)``; bbox_preds: ``(B, pad_size, 10)``.

    Returns:
        ``((S * M, C), (S * M, 10))`` in the order of ``dn.labels``.
    """
    return cls_scores[dn.batch_index, dn.query_index], bbox_preds[dn.batch_index, dn.query_index]


def denoising_losses(
    cls_scores: Tensor,
    bbox_preds: Tensor,
    dn: DenoisingQueries,
    loss_cls: nn.Module,
    loss_bbox: nn.Module,
    code_weights: Tensor,
    split: float,
    sync_cls_avg_factor: bool,
) -> tuple[Tensor, Tensor]:
    """Classification and box losses of the DN queries of one decoder layer.

    The classification average factor is StreamPETR's expected number of positives,
    ``num_targets * (pi / 6) * split ** 3`` (the share of the noise cube inside the
    ``split`` ball); every copy regresses its GT box, background-labelled ones included.

    Args:
        cls_scores: ``(B, pad_size, C)``; bbox_preds: ``(B, pad_size, 10)``.

    Returns:
        ``(loss_cls, loss_bbox)`` scalars (not yet multiplied by ``dn_weight``).
    """
    cls_known, box_known = gather_dn_predictions(dn, cls_scores, bbox_preds)
    expected_pos = dn.num_targets * math.pi / 6 * split ** 3
    loss_c = loss_cls(cls_known, dn.labels, torch.ones_like(dn.labels, dtype=cls_known.dtype),
                      avg_factor=avg_factor(expected_pos, cls_scores, sync_cls_avg_factor))
    num_tgt = avg_factor(float(dn.num_targets), cls_scores, True)
    loss_b = box_code_loss(loss_bbox, box_known, dn.bboxes, code_weights, num_tgt)
    return torch.nan_to_num(loss_c), loss_b


def name_layer_losses(prefix: str, losses_cls: Sequence[Tensor], losses_bbox: Sequence[Tensor]) -> dict[str, Tensor]:
    """``{prefix}loss_cls`` for the last layer and ``d{i}.{prefix}loss_cls`` for the others."""
    named = {f"{prefix}loss_cls": losses_cls[-1], f"{prefix}loss_bbox": losses_bbox[-1]}
    for index, (loss_c, loss_b) in enumerate(zip(losses_cls[:-1], losses_bbox[:-1])):
        named[f"d{index}.{prefix}loss_cls"] = loss_c
        named[f"d{index}.{prefix}loss_bbox"] = loss_b
    return named
