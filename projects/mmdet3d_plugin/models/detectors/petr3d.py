"""Petr3D: StreamPETR's streaming multi-camera 3D detector.

Images -> backbone -> neck -> one feature level ``(B, N, C, H, W)`` -> optional 2D
auxiliary head (``img_roi_head``, which may choose the image tokens) -> 3D query head
(``pts_bbox_head``) with its temporal memory. Streaming: the memory persists across calls;
batch slots whose ``prev_exists`` is False start afresh.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Optional

from torch import Tensor

from ...core import batch_contract
from ...registry import MODELS
from .base import MODES, ROI_LOSS_KEYS, StreamingDetector, build_grid_mask, head_cfg, image_pad_shape
from ..utils.misc import locations as feature_locations
from .labelled_samples import LabelledSamples, head_losses_3d

_GEOMETRY_KEYS = batch_contract.geometry_keys(with_extrinsics=False)


def _check_single_frame(**frames: int) -> None:
    """Only streaming training (one frame per sample) is implemented."""
    unsupported = {name: value for name, value in frames.items() if value != 1}
    if unsupported:
        raise ValueError(
            f"Petr3D supports streaming training with one frame per sample only "
            f"(queue_length=1); got {unsupported}, all must be 1")


@MODELS.register_module()
class Petr3D(StreamingDetector):
    """StreamPETR detector (registered name and arguments as in upstream configs).

    Args:
        img_backbone, img_neck, img_roi_head, pts_bbox_head: Configs built with
            ``MODELS.build``; ``img_neck`` and ``img_roi_head`` are optional.
        use_grid_mask: GridMask augmentation of the images in training.
        grid_mask_cfg: GridMask arguments overriding ``base.GRID_MASK_DEFAULTS``.
        train_cfg: ``dict(pts=...)`` handed to ``pts_bbox_head`` as its ``train_cfg``.
        test_cfg: Must be empty (decoding is configured by the head's ``bbox_coder``).
        num_frame_head_grads, num_frame_backbone_grads, num_frame_losses: Must be 1.
        stride: Stride of the ``position_level`` feature map in pixels.
        position_level: Neck output used by the heads.
        aux_2d_only: Run ``img_roi_head`` only in training (no token selection at test).
        single_test: Accepted for config compatibility; upstream ignores it as well.
        pretrained: Must be None (use the backbone's ``init_cfg`` or ``load_from``).
    """

    reads_extrinsics = False

    def __init__(
        self,
        img_backbone: dict,
        pts_bbox_head: dict,
        img_neck: Optional[dict] = None,
        img_roi_head: Optional[dict] = None,
        use_grid_mask: bool = False,
        grid_mask_cfg: Optional[dict] = None,
        train_cfg: Optional[dict] = None,
        test_cfg: Optional[dict] = None,
        num_frame_head_grads: int = 1,
        num_frame_backbone_grads: int = 1,
        num_frame_losses: int = 1,
        stride: int = 16,
        position_level: int = 0,
        aux_2d_only: bool = True,
        single_test: bool = False,
        pretrained: Optional[str] = None,
    ) -> None:
        super().__init__()
        _check_single_frame(num_frame_head_grads=num_frame_head_grads,
                            num_frame_backbone_grads=num_frame_backbone_grads,
                            num_frame_losses=num_frame_losses)
        if pretrained is not None:
            raise ValueError("Petr3D: 'pretrained' is not supported; give the backbone an "
                             "init_cfg=dict(type='Pretrained', checkpoint=...) or use load_from")
        self.img_backbone = MODELS.build(copy.deepcopy(img_backbone))
        self.img_neck = None if img_neck is None else MODELS.build(copy.deepcopy(img_neck))
        self.img_roi_head = None if img_roi_head is None else MODELS.build(copy.deepcopy(img_roi_head))
        self.pts_bbox_head = MODELS.build(head_cfg(pts_bbox_head, train_cfg, test_cfg, "Petr3D"))
        self.grid_mask = build_grid_mask(grid_mask_cfg, "Petr3D")
        self.use_grid_mask = use_grid_mask
        self.stride = stride
        self.position_level = position_level
        self.aux_2d_only = aux_2d_only
        self.single_test = single_test

    @property
    def runs_2d_head_in_predict(self) -> bool:
        """With ``aux_2d_only=False`` the 2D head chooses the image tokens at test time too."""
        return self.img_roi_head is not None and not self.aux_2d_only

    def extract_img_feat(self, img: Tensor) -> Tensor:
        """Features ``(B, N, C, H / stride, W / stride)`` of images ``(B, N, 3, H, W)``
        (float32; in training under :meth:`feature_autocast`, as upstream's ``extract_feat``)."""
        if img.dim() != 5:
            raise ValueError(f"Petr3D expects img of shape (B, N, 3, H, W), got {tuple(img.shape)}")
        batch, num_cams = img.shape[:2]
        x = img.flatten(0, 1)
        if self.use_grid_mask and self.training:
            x = self.grid_mask(x)
        with self.feature_autocast(img.device):
            feats = self.img_backbone(x)
            if self.img_neck is not None:
                feats = self.img_neck(feats)
        level = feats[self.position_level].float()
        return level.reshape(batch, num_cams, *level.shape[1:])

    def extract_feat(self, img: Tensor) -> list[Tensor]:
        """The one level the StreamPETR head reads, as a list: ``[(B, N, C, h, w)]``."""
        return [self.extract_img_feat(img)]

    def forward(self, batch: Mapping[str, Any], mode: str = "loss") -> Any:
        """``mode='loss'``: dict of named scalar losses; ``mode='predict'``: a list of B dicts
        ``boxes_3d (K, 9)``, ``scores_3d (K,)``, ``labels_3d (K,)`` (docs/data_contract.md)."""
        if mode == "loss":
            return self.loss(batch)
        if mode == "predict":
            return self.predict(batch)
        raise ValueError(f"Petr3D.forward: mode must be one of {MODES}, got {mode!r}")

    def head_outputs(self, feats: list[Tensor], geometry: Mapping[str, Tensor],
                     pad_shape: tuple[int, int]) -> dict[str, Tensor]:
        """One frame of the StreamPETR head without targets (see :class:`StreamingDetector`)."""
        outs, _ = self._run_heads(feats[0], geometry, pad_shape, self.runs_2d_head_in_predict, None)
        return outs

    def _run_heads(self, img_feats: Tensor, batch: Mapping[str, Any], pad_shape: tuple[int, int],
                   with_roi: bool, targets: Optional[Mapping[str, Any]]) -> tuple[dict, Optional[dict]]:
        """Optional 2D head, then the 3D head on ``img_feats (B, N, C, h, w)``; returns
        ``(head outputs, roi outputs)``. ``targets``: the batch in training (GT and pseudo
        labels for the DN queries), None at inference."""
        locations = feature_locations(img_feats.flatten(0, 1), self.stride, *pad_shape)
        locations = locations.unsqueeze(0).expand(img_feats.shape[0] * img_feats.shape[1], -1, -1, -1)
        roi_outs = self.img_roi_head(locations, img_feats) if with_roi else None
        targets = targets or {}
        outs = self.pts_bbox_head(
            img_feats, locations=locations, pad_shape=pad_shape, **{key: batch[key] for key in _GEOMETRY_KEYS},
            topk_indexes=None if roi_outs is None else roi_outs["topk_indexes"],
            gt_bboxes_3d=targets.get("gt_bboxes_3d"), gt_labels_3d=targets.get("gt_labels_3d"),
            pseudo_bboxes_3d=targets.get("pseudo_bboxes_3d"),
            pseudo_labels_3d=targets.get("pseudo_labels_3d"),
        )
        return outs, roi_outs

    def loss(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Losses of the 3D head (and of the 2D head when present) for one batch.

        Optional batch keys ``pseudo_bboxes_3d`` / ``pseudo_labels_3d`` (teacher pseudo
        targets, lists of B) are appended to the GT of the DN queries only. With
        ``gt_labelled`` ``(B,)`` (label-scarce training) the set losses and the 2D losses see
        only the labelled samples (``labelled_samples.py``); the heads run on all."""
        with_roi = self.img_roi_head is not None
        targets_2d = ROI_LOSS_KEYS if with_roi else ()
        batch_contract.require(batch, ("img",) + _GEOMETRY_KEYS + batch_contract.keys(batch_contract.TARGETS_3D)
                               + targets_2d, "Petr3D mode='loss'")
        labelled = LabelledSamples.from_batch(batch, batch["img"].shape[0])
        pad_shape = image_pad_shape(batch["img"])
        outs, roi_outs = self._run_heads(self.extract_img_feat(batch["img"]), batch, pad_shape,
                                         with_roi, targets=batch)
        losses = head_losses_3d(self.pts_bbox_head, batch, outs, labelled)
        if roi_outs is not None:
            # The 2D head ran on every image (its token choice feeds the 3D head); its
            # outputs are per image, so the loss takes the labelled samples' rows.
            roi_outs = labelled.per_image_outputs(roi_outs, batch["img"].shape[1])
            losses.update(labelled.finish(self.img_roi_head.loss(
                *(labelled.gt(batch[key]) for key in targets_2d), roi_outs, pad_shape)))
        return losses

    def predict(self, batch: Mapping[str, Any]) -> list[dict[str, Tensor]]:
        """Decoded boxes of every sample (LiDAR frame, box layout)."""
        batch_contract.require(batch, ("img",) + _GEOMETRY_KEYS, "Petr3D mode='predict'")
        outs = self.head_outputs(self.extract_feat(batch["img"]), batch, image_pad_shape(batch["img"]))
        return self.pts_bbox_head.predict(outs)
