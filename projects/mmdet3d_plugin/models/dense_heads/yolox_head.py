"""RayDN's 2D auxiliary head (``img_roi_head``): YOLOX with an extra centre-2D branch.

Per FPN level, two towers of ``stacked_convs`` Conv-BN-Swish blocks feed 1×1 predictors of
class logits, box deltas, objectness and the offset of the projected 3D centre. Training
assigns priors to each camera image's 2D boxes with SimOTA and returns
``enc_loss_cls`` (IoU-aware soft classes), ``enc_loss_iou``, ``enc_loss_obj``,
``enc_loss_bbox`` (L1 on deltas) and ``enc_loss_centers2d``. The head only supervises the
shared features; the 3D head does not read its outputs (``topk_indexes`` is None).

Names follow the published checkpoints: ``multi_level_cls_convs.{l}.{i}.conv`` / ``.bn``
(BN running statistics included), ``multi_level_conv_{cls,reg,obj,centers2d}.{l}``.
"""
from __future__ import annotations

import copy
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core.bbox.box_ops import bbox_xyxy_to_cxcywh
from ...registry import MODELS, TASK_UTILS
from ..necks.conv_module import ConvModule
from ..utils.float32 import force_fp32
from .set_losses import reduce_mean

_PRIOR_PROB = 0.01
_TRAIN_CFG_KEYS = ("assigner",)


def _sum_loss(cfg: dict, weight: float) -> dict:
    """A YOLOX default loss config with ``reduction='sum'``."""
    return dict(cfg, reduction="sum", loss_weight=weight)


def grid_priors(featmap_sizes: Sequence[tuple[int, int]], strides: Sequence[int],
                dtype: torch.dtype, device: torch.device) -> Tensor:
    """Priors ``(sum(H_l*W_l), 4)`` ``(x, y, stride, stride)`` of cell corners (offset 0),
    row-major per level, levels concatenated (mmdet ``MlvlPointGenerator(offset=0)``)."""
    priors = []
    for (height, width), stride in zip(featmap_sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=dtype) * stride,
                                torch.arange(width, device=device, dtype=dtype) * stride, indexing="ij")
        level_strides = torch.full_like(xs, float(stride))
        priors.append(torch.stack([xs, ys, level_strides, level_strides], dim=-1).reshape(-1, 4))
    return torch.cat(priors)


@MODELS.register_module()
class YOLOXHeadCustom(nn.Module):
    """YOLOX head with a centres-2D branch (registered under the RayDN config name).

    Args:
        num_classes: Object classes.
        in_channels: Channels of each input level.
        feat_channels: Tower channels.
        stacked_convs: Conv blocks per tower.
        strides: Stride of each level (one tower set per level).
        use_depthwise, dcn_on_last_conv: Must be False.
        conv_bias: ``'auto'`` (no bias with a norm) or a bool.
        conv_cfg: None or ``dict(type='Conv2d')``.
        norm_cfg, act_cfg: Tower norm (BN, momentum 0.03, eps 1e-3) and activation (Swish).
        loss_cls, loss_bbox, loss_obj, loss_l1, loss_centers2d: Loss configs (YOLOX defaults,
            summed and divided by the number of positives).
        train_cfg: ``dict(assigner=dict(type='SimOTAAssigner', ...))``.
        test_cfg: Stored for config compatibility (2D predictions are not decoded).
        init_cfg: Must be None or the YOLOX default Kaiming-uniform conv init (PyTorch's
            default ``Conv2d`` init).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 2,
        strides: Sequence[int] = (8, 16, 32),
        use_depthwise: bool = False,
        dcn_on_last_conv: bool = False,
        conv_bias: bool | str = "auto",
        conv_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
        act_cfg: Optional[dict] = None,
        loss_cls: Optional[dict] = None,
        loss_bbox: Optional[dict] = None,
        loss_obj: Optional[dict] = None,
        loss_l1: Optional[dict] = None,
        loss_centers2d: Optional[dict] = None,
        train_cfg: Optional[dict] = None,
        test_cfg: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        _check_supported(use_depthwise, dcn_on_last_conv, init_cfg)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.conv_args = dict(conv_cfg=conv_cfg, bias=conv_bias,
                              norm_cfg=norm_cfg or dict(type="BN", momentum=0.03, eps=0.001),
                              act_cfg=act_cfg or dict(type="Swish"))
        ce = dict(type="CrossEntropyLoss", use_sigmoid=True)
        self.loss_cls = MODELS.build(copy.deepcopy(loss_cls or _sum_loss(ce, 1.0)))
        self.loss_bbox = MODELS.build(copy.deepcopy(
            loss_bbox or _sum_loss(dict(type="IoULoss", mode="square", eps=1e-16), 5.0)))
        self.loss_obj = MODELS.build(copy.deepcopy(loss_obj or _sum_loss(ce, 1.0)))
        self.loss_l1 = MODELS.build(copy.deepcopy(loss_l1 or _sum_loss(dict(type="L1Loss"), 1.0)))
        self.loss_centers2d = MODELS.build(copy.deepcopy(
            loss_centers2d or _sum_loss(dict(type="L1Loss"), 1.0)))
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.assigner = None
        if train_cfg:
            if sorted(train_cfg) != list(_TRAIN_CFG_KEYS):
                raise ValueError(f"YOLOXHeadCustom train_cfg accepts only {list(_TRAIN_CFG_KEYS)}, "
                                 f"got keys {sorted(train_cfg)}")
            self.assigner = TASK_UTILS.build(copy.deepcopy(train_cfg["assigner"]))
        self._init_layers()

    def _init_layers(self) -> None:
        """Towers and 1×1 predictors for every level; class / objectness prior 0.01."""
        self.multi_level_cls_convs = nn.ModuleList(self._tower() for _ in self.strides)
        self.multi_level_reg_convs = nn.ModuleList(self._tower() for _ in self.strides)
        self.multi_level_conv_cls = nn.ModuleList(
            nn.Conv2d(self.feat_channels, self.num_classes, 1) for _ in self.strides)
        self.multi_level_conv_reg = nn.ModuleList(nn.Conv2d(self.feat_channels, 4, 1) for _ in self.strides)
        self.multi_level_conv_obj = nn.ModuleList(nn.Conv2d(self.feat_channels, 1, 1) for _ in self.strides)
        self.multi_level_conv_centers2d = nn.ModuleList(
            nn.Conv2d(self.feat_channels, 2, 1) for _ in self.strides)
        bias = -math.log((1 - _PRIOR_PROB) / _PRIOR_PROB)
        for conv_cls, conv_obj in zip(self.multi_level_conv_cls, self.multi_level_conv_obj):
            nn.init.constant_(conv_cls.bias, bias)
            nn.init.constant_(conv_obj.bias, bias)

    def _tower(self) -> nn.Sequential:
        """``stacked_convs`` 3×3 Conv-BN-Swish blocks."""
        return nn.Sequential(*(
            ConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                       padding=1, **self.conv_args)
            for i in range(self.stacked_convs)))

    def forward(self, img_feats: Sequence[Tensor]) -> dict:
        """Predict on every level.

        Args:
            img_feats: ``L`` levels ``(B, N, C, H_l, W_l)`` (or ``(B*N, C, H_l, W_l)``).

        Returns:
            ``enc_cls_scores`` ``L × (B*N, num_classes, H_l, W_l)``, ``enc_bbox_preds``
            ``L × (B*N, 4, H, W)``, ``objectnesses`` ``L × (B*N, 1, H, W)``,
            ``pred_centers2d_offset`` ``L × (B*N, 2, H, W)`` and ``topk_indexes`` None.
        """
        if len(img_feats) != len(self.strides):
            raise ValueError(f"YOLOXHeadCustom has {len(self.strides)} levels (strides {self.strides}) "
                             f"but got {len(img_feats)} feature maps")
        out = dict(enc_cls_scores=[], enc_bbox_preds=[], objectnesses=[], pred_centers2d_offset=[])
        for level, feat in enumerate(img_feats):
            feat = feat.flatten(0, 1) if feat.dim() == 5 else feat
            cls_feat = self.multi_level_cls_convs[level](feat)
            reg_feat = self.multi_level_reg_convs[level](feat)
            out["enc_cls_scores"].append(self.multi_level_conv_cls[level](cls_feat))
            out["enc_bbox_preds"].append(self.multi_level_conv_reg[level](reg_feat))
            out["objectnesses"].append(self.multi_level_conv_obj[level](reg_feat))
            out["pred_centers2d_offset"].append(self.multi_level_conv_centers2d[level](reg_feat))
        out["topk_indexes"] = None
        return out

    @force_fp32
    def loss(self, gt_bboxes: Sequence[Sequence[Tensor]], gt_labels: Sequence[Sequence[Tensor]],
             centers2d: Sequence[Sequence[Tensor]], preds: dict) -> dict[str, Tensor]:
        """YOLOX losses over all ``B*N`` camera images.

        Args:
            gt_bboxes: ``B`` lists of ``N`` tensors ``(M_bn, 4)`` xyxy pixels.
            gt_labels: ``B`` lists of ``N`` tensors ``(M_bn,)``.
            centers2d: ``B`` lists of ``N`` tensors ``(M_bn, 2)`` pixels.
            preds: the output of :meth:`forward`.

        Returns:
            ``enc_loss_cls``, ``enc_loss_iou``, ``enc_loss_obj``, ``enc_loss_bbox``,
            ``enc_loss_centers2d``.
        """
        if self.assigner is None:
            raise RuntimeError("YOLOXHeadCustom.loss needs train_cfg with an 'assigner'")
        cls_preds, box_deltas, objectness, centre_offsets, priors = self._flatten(preds)
        decoded = torch.cat([box_deltas[..., :2] * priors[:, 2:] + priors[:, :2],
                             box_deltas[..., 2:].exp() * priors[:, 2:]], dim=-1)
        decoded = torch.cat([decoded[..., :2] - decoded[..., 2:] / 2,
                             decoded[..., :2] + decoded[..., 2:] / 2], dim=-1)
        images = [(b, c) for b, c2 in zip(gt_bboxes, centers2d) for b, c in zip(b, c2)]
        labels = [lab for per_sample in gt_labels for lab in per_sample]
        if len(images) != cls_preds.shape[0]:
            raise ValueError(f"YOLOXHeadCustom.loss got GT for {len(images)} images but "
                             f"predictions for {cls_preds.shape[0]}")
        targets = [self._targets_single(cls_preds[i].detach(), objectness[i].detach(), priors,
                                        decoded[i].detach(), boxes, labels[i], centres)
                   for i, (boxes, centres) in enumerate(images)]
        pos_mask, cls_t, obj_t, box_t, l1_t, centre_t = (torch.cat(t) for t in zip(*targets))
        num_pos = float(pos_mask.sum())
        norm = max(float(reduce_mean(cls_preds.new_tensor(num_pos))), 1.0)
        return dict(
            enc_loss_cls=self.loss_cls(cls_preds.reshape(-1, self.num_classes)[pos_mask], cls_t) / norm,
            enc_loss_iou=self.loss_bbox(decoded.reshape(-1, 4)[pos_mask], box_t) / norm,
            enc_loss_obj=self.loss_obj(objectness.reshape(-1, 1), obj_t) / norm,
            enc_loss_bbox=self.loss_l1(box_deltas.reshape(-1, 4)[pos_mask], l1_t) / norm,
            enc_loss_centers2d=self.loss_centers2d(centre_offsets.reshape(-1, 2)[pos_mask], centre_t) / norm,
        )

    def _flatten(self, preds: dict) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Per-image predictions ``(I, P, ·)`` over all levels and the priors ``(P, 4)``."""
        def flat(maps: Sequence[Tensor]) -> Tensor:
            return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, m.shape[1]) for m in maps], 1)

        cls_scores = preds["enc_cls_scores"]
        priors = grid_priors([tuple(m.shape[-2:]) for m in cls_scores], self.strides,
                             cls_scores[0].dtype, cls_scores[0].device)
        return (flat(cls_scores), flat(preds["enc_bbox_preds"]), flat(preds["objectnesses"])[..., 0],
                flat(preds["pred_centers2d_offset"]), priors)

    @torch.no_grad()
    def _targets_single(self, cls_preds: Tensor, objectness: Tensor, priors: Tensor, decoded: Tensor,
                        gt_bboxes: Tensor, gt_labels: Tensor, centers2d: Tensor) -> tuple[Tensor, ...]:
        """SimOTA targets of one image with ``P`` priors and ``M`` boxes.

        Returns:
            ``pos_mask (P,)``, ``cls (K, C)`` one-hot × IoU, ``obj (P, 1)``, ``boxes (K, 4)``,
            ``l1 (K, 4)`` deltas and ``centres (K, 2)`` offsets for the ``K`` positives.
        """
        gt_bboxes = gt_bboxes.to(decoded)
        result = self.assigner.assign(
            cls_preds.sigmoid() * objectness.unsqueeze(1).sigmoid(),
            torch.cat([priors[:, :2] + priors[:, 2:] * 0.5, priors[:, 2:]], dim=-1),
            decoded, gt_bboxes, gt_labels.to(decoded.device).long())
        pos = result.pos_inds
        gt_index = result.pos_assigned_gt_inds
        pos_mask = torch.zeros(priors.shape[0], dtype=torch.bool, device=priors.device)
        pos_mask[pos] = True
        cls_target = F.one_hot(gt_labels.to(decoded.device).long()[gt_index], self.num_classes).to(decoded)
        cls_target = cls_target * result.max_overlaps[pos].unsqueeze(-1)
        box_target = gt_bboxes[gt_index]
        pos_priors = priors[pos]
        gt_cxcywh = bbox_xyxy_to_cxcywh(box_target)
        l1_target = torch.cat([(gt_cxcywh[:, :2] - pos_priors[:, :2]) / pos_priors[:, 2:],
                               torch.log(gt_cxcywh[:, 2:] / pos_priors[:, 2:] + 1e-8)], dim=-1)
        centre_target = (centers2d.to(decoded)[gt_index] - pos_priors[:, :2]) / pos_priors[:, 2:]
        return pos_mask, cls_target, pos_mask.to(decoded).unsqueeze(-1), box_target, l1_target, centre_target


def _check_supported(use_depthwise: bool, dcn_on_last_conv: bool, init_cfg: Optional[dict]) -> None:
    """Raise for YOLOX options this implementation does not cover."""
    if use_depthwise or dcn_on_last_conv:
        raise ValueError("YOLOXHeadCustom supports neither use_depthwise nor dcn_on_last_conv")
    default_init = dict(type="Kaiming", layer="Conv2d", a=math.sqrt(5), distribution="uniform",
                        mode="fan_in", nonlinearity="leaky_relu")
    if init_cfg is not None and dict(init_cfg) != default_init:
        raise ValueError(f"YOLOXHeadCustom init_cfg must be None or {default_init}, got {init_cfg}")
