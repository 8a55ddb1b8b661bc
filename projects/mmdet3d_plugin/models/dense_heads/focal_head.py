"""StreamPETR's 2D auxiliary head (``img_roi_head``): dense 2D detection on image tokens.

Two conv3x3-GN-ReLU towers (classification, regression) run on every camera's feature map.
Each token predicts class logits, a centerness logit, a box as ``ltrb`` distances and its
projected 3D centre. Training matches tokens to the 2D GT boxes per image (Hungarian) and
applies quality focal, L1, GIoU, centre L1 and Gaussian-focal centerness losses. The
product of class and centerness scores can choose the image tokens the 3D head keeps.
"""
from __future__ import annotations

import copy
import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.assigners.hungarian_matching import flat_match_indices, indices_to_device
from ...core.bbox.box_ops import bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh
from ...registry import MODELS, TASK_UTILS
from ..utils.float32 import force_fp32
from .focal_head_targets import apply_center_offset, apply_ltrb, centerness_targets
from .set_losses import reduce_mean

_PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)
_CLIP_EPS = 1e-4


def _conv_tower(channels: int) -> nn.Sequential:
    """Conv3x3 -> GroupNorm(32) -> ReLU (upstream ``shared_cls`` / ``shared_reg``)."""
    return nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1),
                         nn.GroupNorm(32, channels), nn.ReLU())


@MODELS.register_module()
class FocalHead(nn.Module):
    """Dense 2D auxiliary head of StreamPETR.

    Args:
        num_classes: Object classes.
        in_channels: Channels of the image features.
        stride: Feature stride in pixels.
        use_hybrid_tokens: In training keep a random share in ``[0.2, 1)`` of the tokens.
        train_ratio, infer_ratio: Share of tokens kept in training / inference.
        sync_cls_avg_factor: Average the classification normaliser over GPUs.
        loss_cls2d, loss_centerness, loss_bbox2d, loss_iou2d, loss_centers2d: Loss configs.
        train_cfg: ``dict(assigner2d=...)``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 256,
        stride: int = 16,
        use_hybrid_tokens: bool = False,
        train_ratio: float = 1.0,
        infer_ratio: float = 1.0,
        sync_cls_avg_factor: bool = False,
        loss_cls2d: Optional[dict] = None,
        loss_centerness: Optional[dict] = None,
        loss_bbox2d: Optional[dict] = None,
        loss_iou2d: Optional[dict] = None,
        loss_centers2d: Optional[dict] = None,
        train_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        for name, ratio in (("train_ratio", train_ratio), ("infer_ratio", infer_ratio)):
            if not 0.0 < ratio <= 1.0:
                raise ValueError(f"FocalHead {name} must be in (0, 1], got {ratio}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stride = stride
        self.use_hybrid_tokens = use_hybrid_tokens
        self.train_ratio = train_ratio
        self.infer_ratio = infer_ratio
        self.sync_cls_avg_factor = sync_cls_avg_factor
        self._build_losses(loss_cls2d, loss_centerness, loss_bbox2d, loss_iou2d, loss_centers2d)
        self.assigner2d = None
        if train_cfg:
            if set(train_cfg) != {"assigner2d"}:
                raise ValueError(f"FocalHead train_cfg takes only 'assigner2d', got {sorted(train_cfg)}")
            self.assigner2d = TASK_UTILS.build(copy.deepcopy(train_cfg["assigner2d"]))
        self.cls = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        self.shared_reg = _conv_tower(in_channels)
        self.shared_cls = _conv_tower(in_channels)
        self.centerness = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.ltrb = nn.Conv2d(in_channels, 4, kernel_size=1)
        self.center2d = nn.Conv2d(in_channels, 2, kernel_size=1)
        nn.init.constant_(self.cls.bias, _PRIOR_BIAS)
        nn.init.constant_(self.centerness.bias, _PRIOR_BIAS)

    def _build_losses(self, loss_cls2d: Optional[dict], loss_centerness: Optional[dict],
                      loss_bbox2d: Optional[dict], loss_iou2d: Optional[dict],
                      loss_centers2d: Optional[dict]) -> None:
        """Build the five losses (StreamPETR config values by default)."""
        defaults = dict(
            loss_cls2d=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=2.0),
            loss_centerness=dict(type="GaussianFocalLoss", reduction="mean", loss_weight=1.0),
            loss_bbox2d=dict(type="L1Loss", loss_weight=5.0),
            loss_iou2d=dict(type="GIoULoss", loss_weight=2.0),
            loss_centers2d=dict(type="L1Loss", loss_weight=10.0),
        )
        given = dict(loss_cls2d=loss_cls2d, loss_centerness=loss_centerness,
                     loss_bbox2d=loss_bbox2d, loss_iou2d=loss_iou2d, loss_centers2d=loss_centers2d)
        for name, cfg in given.items():
            setattr(self, name, MODELS.build(copy.deepcopy(defaults[name] if cfg is None else cfg)))

    def forward(self, locations: Tensor, img_feats: Tensor) -> dict[str, Tensor]:
        """Dense 2D predictions and the kept token indices.

        Args:
            locations: ``(B * N, H, W, 2)`` normalised token centres.
            img_feats: ``(B, N, C, H, W)``.

        Returns:
            ``enc_cls_scores`` ``(B * N, H * W, num_classes)`` logits, ``enc_bbox_preds``
            ``(B * N, H * W, 4)`` normalised ``cxcywh``, ``pred_centers2d``
            ``(B * N, H * W, 2)`` normalised, ``centerness`` ``(B * N, H * W, 1)`` logits,
            ``topk_indexes`` ``(B, K, 1)`` tokens (of ``N * H * W`` per sample) by
            decreasing ``sigmoid(max cls) * sigmoid(centerness)``.
        """
        batch, num_cams = img_feats.shape[:2]
        x = img_feats.flatten(0, 1)
        cls_feat = self.shared_cls(x)
        cls_logits = self.cls(cls_feat).permute(0, 2, 3, 1).reshape(batch * num_cams, -1, self.num_classes)
        centerness = self.centerness(cls_feat).permute(0, 2, 3, 1).reshape(batch * num_cams, -1, 1)
        reg_feat = self.shared_reg(x)
        ltrb = self.ltrb(reg_feat).permute(0, 2, 3, 1).sigmoid()
        offset = self.center2d(reg_feat).permute(0, 2, 3, 1)
        boxes = apply_ltrb(locations, ltrb).reshape(batch * num_cams, -1, 4)
        centers2d = apply_center_offset(locations, offset).reshape(batch * num_cams, -1, 2)
        weight = (cls_logits.detach().max(dim=-1).values.sigmoid()
                  * centerness.detach()[..., 0].sigmoid()).reshape(batch, -1, 1)
        _, topk_indexes = torch.topk(weight, self._num_kept(weight.shape[1]), dim=1)
        return dict(enc_cls_scores=cls_logits, enc_bbox_preds=boxes, pred_centers2d=centers2d,
                    centerness=centerness, topk_indexes=topk_indexes)

    def _num_kept(self, num_tokens: int) -> int:
        """Number of tokens kept for the 3D head."""
        if not self.training:
            ratio = self.infer_ratio
        elif self.use_hybrid_tokens:
            ratio = 0.2 + 0.8 * float(torch.rand(()))
        else:
            ratio = self.train_ratio
        return max(int(num_tokens * ratio), 1)

    @force_fp32
    def loss(
        self,
        gt_bboxes: Sequence[Sequence[Tensor]],
        gt_labels: Sequence[Sequence[Tensor]],
        centers2d: Sequence[Sequence[Tensor]],
        preds: dict[str, Tensor],
        pad_shape: tuple[int, int],
    ) -> dict[str, Tensor]:
        """2D losses over all images of the batch.

        Args:
            gt_bboxes: B lists of N ``(M, 4)`` pixel boxes ``xyxy``.
            gt_labels: B lists of N ``(M,)`` int64.
            centers2d: B lists of N ``(M, 2)`` projected centres in pixels.
            preds: the output of :meth:`forward`.
            pad_shape: ``(pad_h, pad_w)`` the predictions are normalised by.

        Returns:
            ``enc_loss_cls``, ``enc_loss_bbox``, ``enc_loss_iou``, ``centers2d_losses``,
            ``centerness_losses`` (upstream names).
        """
        if self.assigner2d is None:
            raise RuntimeError("FocalHead.loss needs train_cfg with an 'assigner2d'")
        device = preds["enc_bbox_preds"].device
        boxes = [b.to(device).float().reshape(-1, 4) for sample in gt_bboxes for b in sample]
        labels = [lab.to(device).long().reshape(-1) for sample in gt_labels for lab in sample]
        centers = [c.to(device).float().reshape(-1, 2) for sample in centers2d for c in sample]
        pos_index, gt_index, target_labels = self._assign(preds, boxes, labels, centers, pad_shape)
        # Normalisers as upstream: GIoU (and classification unless sync_cls_avg_factor) by
        # this process's positives; L1, centre L1 and centerness by the mean over processes.
        num_pos = int(pos_index.numel())
        num_pos_avg = float(torch.clamp(reduce_mean(preds["enc_bbox_preds"].new_tensor([float(num_pos)])), min=1))
        pad_h, pad_w = pad_shape
        factor = preds["enc_bbox_preds"].new_tensor([pad_w, pad_h, pad_w, pad_h])
        gt_boxes_px, gt_centers_px = torch.cat(boxes)[gt_index], torch.cat(centers)[gt_index]
        pred_boxes = preds["enc_bbox_preds"].reshape(-1, 4)[pos_index]
        pred_boxes_px = bbox_cxcywh_to_xyxy(pred_boxes) * factor
        loss_iou = self.loss_iou2d(pred_boxes_px, gt_boxes_px, avg_factor=float(num_pos))
        loss_bbox = self.loss_bbox2d(pred_boxes, bbox_xyxy_to_cxcywh(gt_boxes_px / factor),
                                     avg_factor=num_pos_avg)
        pred_centers = preds["pred_centers2d"].reshape(-1, 2)[pos_index]
        loss_centers = self.loss_centers2d(pred_centers, gt_centers_px / factor[:2],
                                           avg_factor=num_pos_avg)
        loss_cls = self._cls_loss(preds["enc_cls_scores"], target_labels, pos_index,
                                  bbox_overlaps(gt_boxes_px, pred_boxes_px.detach(), is_aligned=True),
                                  num_pos)
        heatmaps = centerness_targets(centers, boxes, pad_h // self.stride, pad_w // self.stride,
                                      self.stride)
        centerness = preds["centerness"].sigmoid().clamp(_CLIP_EPS, 1 - _CLIP_EPS)
        loss_centerness = self.loss_centerness(centerness, heatmaps, avg_factor=num_pos_avg)
        return dict(enc_loss_cls=loss_cls, enc_loss_bbox=loss_bbox, enc_loss_iou=loss_iou,
                    centers2d_losses=loss_centers, centerness_losses=loss_centerness)

    def _assign(self, preds: dict[str, Tensor], boxes: list[Tensor], labels: list[Tensor],
                centers: list[Tensor], pad_shape: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """Match every image's tokens to its GT.

        Returns:
            ``pos_index (P,)`` flat token indices over all images, ``gt_index (P,)`` indices
            into the concatenated GT, ``labels (num_images * Q,)`` with background
            ``num_classes``.
        """
        num_images, num_tokens = preds["enc_cls_scores"].shape[:2]
        matchings = self.assigner2d.assign_images(
            preds["enc_bbox_preds"].detach(), preds["enc_cls_scores"].detach(),
            preds["pred_centers2d"].detach(), boxes, labels, centers, {"pad_shape": tuple(pad_shape)})
        pos_host, gt_host = flat_match_indices(matchings, num_tokens, [len(lab) for lab in labels])
        device = preds["enc_cls_scores"].device
        pos_index, gt_index = indices_to_device([pos_host, gt_host], device)
        all_labels = torch.cat([torch.empty(0, dtype=torch.long, device=device), *labels])
        target_labels = torch.full((num_images * num_tokens,), self.num_classes, dtype=torch.long, device=device)
        target_labels[pos_index] = all_labels[gt_index]
        return pos_index, gt_index, target_labels

    def _cls_loss(self, cls_scores: Tensor, labels: Tensor, pos_index: Tensor, pos_iou: Tensor,
                  num_pos: int) -> Tensor:
        """Quality focal loss with the IoU of each matched prediction as its soft target."""
        cls_flat = cls_scores.reshape(-1, self.num_classes)
        scores = cls_flat.new_zeros(cls_flat.shape[0])
        scores[pos_index] = pos_iou.to(scores.dtype)
        avg = cls_flat.new_tensor([float(num_pos)])
        if self.sync_cls_avg_factor:
            avg = reduce_mean(avg)
        loss = self.loss_cls2d(cls_flat, (labels, scores), torch.ones_like(scores),
                               avg_factor=max(float(avg), 1.0))
        return torch.nan_to_num(loss)
