"""RayDN's 3D query head: StreamPETR's sparse temporal head with ray denoising.

One frame: every FPN level's image tokens are aligned by an MLN on the camera
(``[fx/1e3, fy/1e3, extrinsics[:3, :4]]``; no 3D position embedding); learnable reference
points (plus, in training, box-noise and ray denoising queries) become queries; the memory
queue, moved into the current frame, supplies ``num_propagated`` extra queries and further
self-attention keys, aligned by MLN on their motion and age; the decoder (self-attention +
deformable feature aggregation around fixed reference points) runs; tied per-layer branches
predict classes and box codes; the top-k queries are pushed back into the memory. All but
the image tokens, the DN queries and the transformer call is StreamPETR's, shared through
:class:`.sparse_query_head.SparseQueryHead`.

State-dict names follow the published RayDN checkpoints (``cls_branches.{i}``,
``reference_points``, ``pseudo_reference_points``, ``query_embedding``,
``spatial_alignment``, ``time_embedding``, ``ego_pose_pe``, ``ego_pose_memory``,
``transformer.decoder.layers.{i}``, and the constants ``code_weights``, ``match_costs``,
``pc_range``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM
from ...registry import MODELS
from ..utils.denoising import DenoisingQueries
from ..utils.mln import MLN
from ..utils.ray_denoising import RayDenoising
from .sparse_query_head import SparseQueryHead, shared_setting_problems

_CAMERA_DIMS = 14  # fx / 1e3, fy / 1e3 and the 12 entries of extrinsics[:3, :4]


@MODELS.register_module()
class RayDNHead(SparseQueryHead):
    """RayDN head (registered name and constructor arguments as in upstream configs).

    Args:
        num_classes: Object classes (sigmoid classification, no background logit).
        transformer: Config of the :class:`Detr3DTransformer`.
        bbox_coder: Config of the ``NMSFreeCoder`` (its ``pc_range`` is the head's).
        in_channels: Image feature channels (must equal ``embed_dims``).
        stride: Feature strides (documentation of the input).
        embed_dims: Query channels.
        num_query: Learnable queries.
        num_reg_fcs: Hidden layers of the cls / reg branches.
        memory_len, topk_proposals, num_propagated: Memory length, entries pushed per frame,
            memory entries used as queries.
        with_dn: Denoising queries in training.
        with_ego_pos: MLN alignment of queries and memory on ego motion.
        match_with_velo: Include velocity in the matching cost.
        match_costs: Per-code weights of the matching cost (default ``code_weights``).
        sync_cls_avg_factor: Average the classification normaliser over GPUs.
        code_weights: Per-code weights of the box loss.
        loss_cls, loss_bbox, loss_iou: Loss configs (``loss_iou`` weight must be 0).
        train_cfg: ``dict(assigner=...)`` (mmdet3d's other ``pts`` keys are accepted).
        test_cfg: Accepted for config compatibility; must be None (decoding is the coder's).
        scalar, noise_scale, noise_trans, dn_weight, split: Box-noise DN groups.
        raydn_group, raydn_num, raydn_alpha, raydn_beta, raydn_radius: Ray denoising.
        normedlinear: Must be False.
        code_size: Must be 10.
    """

    def __init__(
        self,
        num_classes: int,
        transformer: dict,
        bbox_coder: dict,
        in_channels: int = 256,
        stride: Sequence[int] = (16,),
        embed_dims: int = 256,
        num_query: int = 100,
        num_reg_fcs: int = 2,
        memory_len: int = 1024,
        topk_proposals: int = 256,
        num_propagated: int = 256,
        with_dn: bool = True,
        with_ego_pos: bool = True,
        match_with_velo: bool = True,
        match_costs: Optional[Sequence[float]] = None,
        sync_cls_avg_factor: bool = False,
        code_weights: Optional[Sequence[float]] = None,
        loss_cls: Optional[dict] = None,
        loss_bbox: Optional[dict] = None,
        loss_iou: Optional[dict] = None,
        train_cfg: Optional[dict] = None,
        test_cfg: Optional[dict] = None,
        scalar: int = 5,
        noise_scale: float = 0.4,
        noise_trans: float = 0.0,
        dn_weight: float = 1.0,
        split: float = 0.5,
        raydn_group: int = 1,
        raydn_num: int = 5,
        raydn_alpha: float = 8,
        raydn_beta: float = 2,
        raydn_radius: float = 3,
        normedlinear: bool = False,
        code_size: int = CODE_DIM,
    ) -> None:
        _check_supported(in_channels, embed_dims, num_propagated, memory_len, topk_proposals,
                         normedlinear, code_size, test_cfg)
        denoising = RayDenoising(num_classes, scalar, noise_scale, noise_trans, split,
                                 raydn_group, raydn_num, raydn_alpha, raydn_beta, raydn_radius)
        super().__init__(
            num_classes, transformer, bbox_coder, in_channels=in_channels, stride=list(stride),
            embed_dims=embed_dims, num_query=num_query, num_reg_fcs=num_reg_fcs,
            memory_len=memory_len, topk_proposals=topk_proposals, num_propagated=num_propagated,
            with_dn=with_dn, with_ego_pos=with_ego_pos, match_with_velo=match_with_velo,
            match_costs=match_costs, sync_cls_avg_factor=sync_cls_avg_factor,
            code_weights=code_weights, loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou,
            train_cfg=train_cfg, dn_weight=dn_weight, split=split)
        self.denoising = denoising
        self.transformer.init_weights()

    def _build_spatial_alignment(self) -> nn.Module:
        """MLN of every level's tokens on the camera (``fx, fy, extrinsics[:3, :4]``)."""
        return MLN(_CAMERA_DIMS, f_dim=self.embed_dims, use_ln=False)

    def forward(
        self,
        img_feats: Sequence[Tensor],
        lidar2img: Tensor,
        intrinsics: Tensor,
        extrinsics: Tensor,
        ego_pose: Tensor,
        ego_pose_inv: Tensor,
        timestamp: Tensor,
        prev_exists: Tensor,
        pad_shape: tuple[int, int],
        gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
        gt_labels_3d: Optional[Sequence[Tensor]] = None,
        pseudo_bboxes_3d: Optional[Sequence[Tensor]] = None,
        pseudo_labels_3d: Optional[Sequence[Tensor]] = None,
    ) -> dict:
        """Decode one frame and update the memory.

        Args:
            img_feats: ``L`` levels ``(B, N, C, H_l, W_l)``.
            lidar2img, intrinsics, extrinsics: ``(B, N, 4, 4)``.
            ego_pose, ego_pose_inv: ``(B, 4, 4)`` LiDAR -> global and inverse.
            timestamp: ``(B,)`` float64 seconds; prev_exists: ``(B,)`` bool.
            pad_shape: ``(pad_h, pad_w)`` of the images in pixels.
            gt_bboxes_3d, gt_labels_3d: per-sample GT, used for DN queries in training.
            pseudo_bboxes_3d, pseudo_labels_3d: optional per-sample teacher pseudo targets
                ``(k_b, 9)`` / ``(k_b,)``, appended to the GT of the DN queries only.

        Returns:
            The frame's outputs, see :meth:`.SparseQueryHead._forward_frame`.
        """
        feat_flatten, spatial_shapes = self._image_tokens(img_feats, intrinsics, extrinsics)
        targets = self._dn_targets(gt_bboxes_3d, gt_labels_3d, pseudo_bboxes_3d, pseudo_labels_3d)
        dn = None if targets is None else self.denoising(*targets, self.pc_range, lidar2img, pad_shape)
        image = (feat_flatten, spatial_shapes, lidar2img, pad_shape)
        return self._forward_frame(image, dn, ego_pose, ego_pose_inv, timestamp, prev_exists)

    def _decode(self, image: tuple, dn: Optional[DenoisingQueries], tgt: Tensor, query_pos: Tensor,
                reference_points: Tensor, temp_memory: Tensor, temp_pos: Tensor) -> Tensor:
        """RayDN's decoder: deformable aggregation of ``image`` = ``(feat_flatten,
        spatial_shapes, lidar2img, pad_shape)`` around the reference points, the DN groups
        masked as :meth:`.RayDenoising.attention_mask` says."""
        feat_flatten, spatial_shapes, lidar2img, pad_shape = image
        attn_mask = None if dn is None else self.denoising.attention_mask(
            dn, self.num_query, self.num_propagated, self.memory_len)
        return self.transformer(tgt, query_pos, feat_flatten, spatial_shapes, reference_points,
                                self.pc_range, lidar2img, pad_shape, temp_memory, temp_pos, attn_mask)

    def _image_tokens(self, img_feats: Sequence[Tensor], intrinsics: Tensor, extrinsics: Tensor
                      ) -> tuple[Tensor, list[tuple[int, int]]]:
        """Camera-aligned tokens of all levels ``(B*N, sum(H_l*W_l), C)`` and the level sizes."""
        camera = torch.cat([intrinsics[..., 0, 0:1] / 1e3, intrinsics[..., 1, 1:2] / 1e3,
                            extrinsics[..., :3, :].flatten(-2)], dim=-1)
        camera = camera.flatten(0, 1).unsqueeze(1)
        tokens, shapes = [], []
        for feat in img_feats:
            batch, num_cams, channels, height, width = feat.shape
            level = feat.reshape(batch * num_cams, channels, height * width).transpose(1, 2)
            tokens.append(self.spatial_alignment(level, camera))
            shapes.append((int(height), int(width)))
        return torch.cat(tokens, dim=1), shapes


def _check_supported(in_channels: int, embed_dims: int, num_propagated: int, memory_len: int,
                     topk_proposals: int, normedlinear: bool, code_size: int,
                     test_cfg: Optional[dict]) -> None:
    """Raise a clear error for RayDNHead settings this implementation does not cover."""
    problems = shared_setting_problems(embed_dims, num_propagated, memory_len, topk_proposals,
                                       code_size)
    if in_channels != embed_dims:
        problems.append(f"in_channels={in_channels} != embed_dims={embed_dims} (image tokens "
                        "enter the decoder without a projection)")
    if normedlinear:
        problems.append("normedlinear=True (only a plain Linear classifier)")
    if test_cfg is not None:
        problems.append(f"test_cfg={test_cfg} (decoding is configured by bbox_coder)")
    if problems:
        raise ValueError("RayDNHead does not support: " + "; ".join(problems))
