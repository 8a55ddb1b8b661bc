"""RepDetr3D: RayDN's streaming multi-camera detector.

ResNet + FPN (4 levels, strides 8-64) → optional YOLOX 2D auxiliary head (training only)
→ :class:`RayDNHead`. One call processes one frame per batch slot (``queue_length=1``);
the head's memory queue carries the history across calls and is cleared per slot where
``prev_exists`` is False, and entirely by :meth:`RepDetr3D.reset_memory`. The memory is
explicit state with no hidden resets: the engine stashes it, resets it for an evaluation
stream and restores it afterwards, and checkpoints carry it, so a resumed run continues
exactly.

The batch is the one of ``docs/data_contract.md``; ``forward(batch, mode='loss')`` returns
named losses, ``forward(batch, mode='predict')`` a list of ``boxes_3d``/``scores_3d``/
``labels_3d`` dicts.
"""
from __future__ import annotations

import copy
from typing import Mapping, Optional, Sequence

from torch import Tensor

from ...core import batch_contract
from ...registry import MODELS
from .base import MODES, ROI_LOSS_KEYS, StreamingDetector, build_grid_mask, head_cfg, image_pad_shape
from .labelled_samples import LabelledSamples, head_losses_3d

_GEOMETRY_KEYS = batch_contract.geometry_keys(with_extrinsics=True)


@MODELS.register_module()
class RepDetr3D(StreamingDetector):
    """The RayDN detector (registered name and arguments as in upstream configs).

    Args:
        img_backbone, img_neck, pts_bbox_head: Configs of the backbone, the FPN and the
            :class:`RayDNHead`.
        img_roi_head: Config of the 2D auxiliary head, or None.
        train_cfg: ``dict(pts=...)``, given to the 3D head as its ``train_cfg``.
        test_cfg: Must be empty (decoding is configured by the head's ``bbox_coder``).
        use_grid_mask: GridMask augmentation of the images in training.
        grid_mask_cfg: GridMask arguments overriding ``base.GRID_MASK_DEFAULTS``.
        num_frame_head_grads, num_frame_backbone_grads, num_frame_losses: Must be 1
            (streaming training, one frame per call).
        stride: Strides of the levels in ``position_level``.
        position_level: Neck outputs passed to the heads.
        aux_2d_only: Run the 2D head only in training (must be True).
        single_test: Accepted for config compatibility (testing is always single-frame).
        pretrained: Must be None (use the backbone's ``init_cfg``).
    """

    def __init__(
        self,
        img_backbone: dict,
        img_neck: dict,
        pts_bbox_head: dict,
        img_roi_head: Optional[dict] = None,
        train_cfg: Optional[dict] = None,
        test_cfg: Optional[dict] = None,
        use_grid_mask: bool = False,
        grid_mask_cfg: Optional[dict] = None,
        num_frame_head_grads: int = 1,
        num_frame_backbone_grads: int = 1,
        num_frame_losses: int = 1,
        stride: Sequence[int] = (16,),
        position_level: Sequence[int] = (0,),
        aux_2d_only: bool = True,
        single_test: bool = False,
        pretrained: Optional[str] = None,
    ) -> None:
        super().__init__()
        _check_supported(num_frame_head_grads, num_frame_backbone_grads, num_frame_losses,
                         stride, position_level, aux_2d_only, pretrained)
        self.img_backbone = MODELS.build(copy.deepcopy(img_backbone))
        self.img_neck = MODELS.build(copy.deepcopy(img_neck))
        self.img_roi_head = None if img_roi_head is None else MODELS.build(copy.deepcopy(img_roi_head))
        self.pts_bbox_head = MODELS.build(head_cfg(pts_bbox_head, train_cfg, test_cfg, "RepDetr3D"))
        self.use_grid_mask = use_grid_mask
        self.grid_mask = build_grid_mask(grid_mask_cfg, "RepDetr3D")
        self.stride = list(stride)
        self.position_level = list(position_level)
        self.single_test = single_test

    def extract_feat(self, img: Tensor) -> list[Tensor]:
        """Image features of the levels in ``position_level``.

        Args:
            img: ``(B, N, 3, H, W)`` normalised images.

        Returns:
            One ``(B, N, C, H / s, W / s)`` map per level.
        """
        batch, num_cams = img.shape[:2]
        images = img.flatten(0, 1)
        if self.use_grid_mask and self.training:
            images = self.grid_mask(images)
        with self.feature_autocast(img.device):
            feats = self.img_neck(self.img_backbone(images))
        if max(self.position_level) >= len(feats):
            raise ValueError(f"position_level={self.position_level} but the neck gives {len(feats)} levels")
        return [feats[i].float().reshape(batch, num_cams, *feats[i].shape[1:]) for i in self.position_level]

    def forward(self, batch: dict, mode: str = "loss") -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Run one frame per batch slot.

        Args:
            batch: a collated batch (``docs/data_contract.md``).
            mode: ``'loss'`` → named scalar losses; ``'predict'`` → B dicts of ``boxes_3d``
                ``(K, 9)``, ``scores_3d`` ``(K,)``, ``labels_3d`` ``(K,)``.
        """
        if mode not in MODES:
            raise ValueError(f"RepDetr3D.forward: mode must be one of {MODES}, got {mode!r}")
        targets = batch_contract.keys(batch_contract.TARGETS_3D) if mode == "loss" else ()
        if mode == "loss" and self.img_roi_head is not None:
            targets += ROI_LOSS_KEYS
        batch_contract.require(batch, ("img",) + _GEOMETRY_KEYS + targets, f"RepDetr3D mode={mode!r}")
        img_feats = self.extract_feat(batch["img"])
        if mode == "loss":
            return self._loss(batch, img_feats)
        return self.pts_bbox_head.predict(self.head_outputs(img_feats, batch, image_pad_shape(batch["img"])))

    def head_outputs(self, feats: list[Tensor], geometry: Mapping[str, Tensor],
                     pad_shape: tuple[int, int]) -> dict[str, Tensor]:
        """One frame of the RayDN head without targets (see :class:`StreamingDetector`)."""
        return self.pts_bbox_head(feats, pad_shape=pad_shape, **{key: geometry[key] for key in _GEOMETRY_KEYS})

    def _loss(self, batch: dict, img_feats: list[Tensor]) -> dict[str, Tensor]:
        """3D losses, plus the 2D auxiliary losses when there is a 2D head.

        Optional batch keys ``pseudo_bboxes_3d`` / ``pseudo_labels_3d`` (teacher pseudo
        targets, lists of B) are appended to the GT of the DN queries only. With
        ``gt_labelled`` ``(B,)`` (label-scarce training) the set losses and the 2D head see
        only the labelled samples (``labelled_samples.py``); the 3D head runs on all."""
        labelled = LabelledSamples.from_batch(batch, batch["img"].shape[0])
        preds = self.pts_bbox_head(img_feats, gt_bboxes_3d=batch["gt_bboxes_3d"],
                                   gt_labels_3d=batch["gt_labels_3d"],
                                   pseudo_bboxes_3d=batch.get("pseudo_bboxes_3d"),
                                   pseudo_labels_3d=batch.get("pseudo_labels_3d"),
                                   pad_shape=image_pad_shape(batch["img"]), **{key: batch[key] for key in _GEOMETRY_KEYS})
        losses = head_losses_3d(self.pts_bbox_head, batch, preds, labelled)
        if self.img_roi_head is not None:
            preds_2d = self.img_roi_head([labelled.samples(feat) for feat in img_feats])
            losses.update(labelled.finish(self.img_roi_head.loss(
                *(labelled.gt(batch[key]) for key in ROI_LOSS_KEYS), preds_2d)))
        return losses


def _check_supported(num_frame_head_grads: int, num_frame_backbone_grads: int, num_frame_losses: int,
                     stride: Sequence[int], position_level: Sequence[int], aux_2d_only: bool,
                     pretrained: Optional[str]) -> None:
    """Raise a clear error for RepDetr3D settings this implementation does not cover."""
    problems = []
    frames = dict(num_frame_head_grads=num_frame_head_grads,
                  num_frame_backbone_grads=num_frame_backbone_grads, num_frame_losses=num_frame_losses)
    problems += [f"{key}={value} (streaming training uses 1)" for key, value in frames.items() if value != 1]
    if len(stride) != len(position_level):
        problems.append(f"stride={list(stride)} and position_level={list(position_level)} differ in length")
    if not aux_2d_only:
        problems.append("aux_2d_only=False (the 2D head runs in training only)")
    if pretrained is not None:
        problems.append(f"pretrained={pretrained!r} (set img_backbone.init_cfg instead)")
    if problems:
        raise ValueError("RepDetr3D does not support: " + "; ".join(problems))
