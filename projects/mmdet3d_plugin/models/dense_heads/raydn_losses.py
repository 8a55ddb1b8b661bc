"""Losses of :class:`RayDNHead`: DETR set losses per decoder layer plus denoising losses.

The set losses match queries to GT with the Hungarian assigner under the head's
``match_costs`` (and velocity only when ``match_with_velo``). The denoising losses score
the box-noise and the ray copies together (StreamPETR's :func:`denoising_losses`): the
classification normaliser is ``num_targets * pi / 6 * split ** 3`` and every copy regresses
its GT box, depth hard negatives included, as upstream. All losses stay finite (and in the
graph) when the batch holds no GT box.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

from torch import Tensor, nn

from ...registry import MODELS, TASK_UTILS
from .streampetr_losses import (assign_set_targets, denoising_losses, name_layer_losses,
                                set_prediction_losses)

_TRAIN_CFG_KEYS = ("assigner", "grid_size", "voxel_size", "point_cloud_range", "out_size_factor")


def build_raydn_losses(loss_cls: Optional[dict], loss_bbox: Optional[dict], loss_iou: Optional[dict],
                       train_cfg: Optional[dict]) -> tuple[nn.Module, nn.Module, Optional[object]]:
    """Build ``(loss_cls, loss_bbox, assigner)`` from RayDN head configs.

    ``loss_iou`` is accepted for config compatibility and must have ``loss_weight=0`` (RayDN
    has no 3D IoU loss). ``train_cfg`` needs an ``assigner`` (mmdet3d's other ``pts`` keys
    are accepted); without it the head can predict but not compute losses.
    """
    loss_cls = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25,
                    loss_weight=2.0) if loss_cls is None else loss_cls
    if not loss_cls.get("use_sigmoid", True):
        raise ValueError(f"RayDNHead supports only sigmoid classification, got loss_cls={loss_cls}")
    if loss_iou is not None and loss_iou.get("loss_weight", 1.0) != 0:
        raise ValueError(f"RayDNHead has no 3D IoU loss; loss_iou must have loss_weight=0, got {loss_iou}")
    cls_module = MODELS.build(copy.deepcopy(loss_cls))
    bbox_module = MODELS.build(copy.deepcopy(
        dict(type="L1Loss", loss_weight=0.25) if loss_bbox is None else loss_bbox))
    if not train_cfg:
        return cls_module, bbox_module, None
    unknown = sorted(set(train_cfg) - set(_TRAIN_CFG_KEYS))
    if unknown or "assigner" not in train_cfg:
        raise ValueError(f"RayDNHead train_cfg needs 'assigner' and accepts only "
                         f"{list(_TRAIN_CFG_KEYS)}; got keys {sorted(train_cfg)}")
    return cls_module, bbox_module, TASK_UTILS.build(copy.deepcopy(train_cfg["assigner"]))


def raydn_losses(head: nn.Module, gt_bboxes_3d: Sequence[Tensor], gt_labels_3d: Sequence[Tensor],
                 preds: dict) -> dict[str, Tensor]:
    """All losses of a :class:`RayDNHead` forward.

    Args:
        head: the head (losses, assigner, weights and DN settings are read from it).
        gt_bboxes_3d: B tensors ``(M_b, 9)``; gt_labels_3d: B tensors ``(M_b,)``.
        preds: the head's forward output.

    Returns:
        ``loss_cls``, ``loss_bbox``, ``d{i}.loss_*``; in training with DN also
        ``dn_loss_cls``, ``dn_loss_bbox`` and ``d{i}.dn_loss_*``.
    """
    if head.assigner is None:
        raise RuntimeError("RayDNHead.loss needs train_cfg with an 'assigner'")
    losses_cls, losses_bbox = [], []
    for cls_scores, bbox_preds in zip(preds["all_cls_scores"], preds["all_bbox_preds"]):
        targets = assign_set_targets(head.assigner, cls_scores, bbox_preds, gt_bboxes_3d,
                                     gt_labels_3d, head.num_classes, head.match_costs,
                                     head.match_with_velo)
        loss_c, loss_b = set_prediction_losses(cls_scores, bbox_preds, targets, head.loss_cls,
                                               head.loss_bbox, head.code_weights,
                                               head.sync_cls_avg_factor)
        losses_cls.append(loss_c)
        losses_bbox.append(loss_b)
    named = name_layer_losses("", losses_cls, losses_bbox)
    if head.with_dn and head.training:
        named.update(_denoising_losses(head, preds))
    return named


def _denoising_losses(head: nn.Module, preds: dict) -> dict[str, Tensor]:
    """DN losses of every layer (zeros, still in the graph, when there is no DN query)."""
    dn = preds["dn"]
    if dn is None:
        zero = preds["all_cls_scores"].sum() * 0.0
        zeros = [zero] * preds["all_cls_scores"].shape[0]
        return name_layer_losses("dn_", zeros, zeros)
    losses_cls, losses_bbox = [], []
    for cls_scores, bbox_preds in zip(preds["dn_cls_scores"], preds["dn_bbox_preds"]):
        loss_c, loss_b = denoising_losses(cls_scores, bbox_preds, dn, head.loss_cls, head.loss_bbox,
                                          head.code_weights, head.split, head.sync_cls_avg_factor)
        losses_cls.append(head.dn_weight * loss_c)
        losses_bbox.append(head.dn_weight * loss_b)
    return name_layer_losses("dn_", losses_cls, losses_bbox)
