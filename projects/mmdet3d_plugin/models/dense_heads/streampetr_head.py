"""StreamPETR's 3D query head: object-centric temporal modelling with a memory queue.

One frame: image tokens get a 3D position embedding (:mod:`.petr_position`), spatial MLN
alignment on the camera focal lengths and a featurised PE; learnable reference points
(plus DN queries in training) become queries; the memory queue, moved into the current
frame, supplies ``num_propagated`` extra queries and further self-attention keys, both
aligned by MLN on their motion and age; the decoder runs; per-layer branches predict
classes and box codes; the top-k queries are pushed back into the memory. All but the
image tokens, the DN queries and the transformer call is shared with RayDN through
:class:`.sparse_query_head.SparseQueryHead`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM
from ...registry import MODELS
from ..utils.denoising import DenoisingQueries, build_dn_queries, dn_self_attention_mask
from ..utils.misc import inverse_sigmoid, topk_gather
from ..utils.mln import MLN, SELayer_Linear
from .petr_position import camera_focal_tokens, frustum_depth_bins, frustum_points
from .sparse_query_head import SparseQueryHead, shared_setting_problems

_CONE_BIN_FROM_END = 30  # upstream takes coords3d[..., -90:-87]: bin D - 30 of the frustum


@MODELS.register_module()
class StreamPETRHead(SparseQueryHead):
    """StreamPETR head (registered name and constructor arguments as in upstream configs).

    Args:
        num_classes: Object classes (sigmoid classification, no background logit).
        in_channels: Channels of the image features.
        stride: Feature stride (documentation of the input; locations carry it).
        embed_dims: Query channels.
        num_query: Learnable queries.
        num_reg_fcs: Hidden layers of the cls / reg branches.
        memory_len, topk_proposals, num_propagated: Memory queue length, entries pushed
            per frame, memory entries used as queries.
        with_dn: Denoising queries in training.
        with_ego_pos: MLN alignment of queries and memory on ego motion.
        match_with_velo: Include velocity in the matching cost.
        match_costs: Per-code weights of the matching cost (default ``code_weights``).
        transformer: Config of the :class:`PETRTemporalTransformer`.
        sync_cls_avg_factor: Average the classification normaliser over GPUs.
        code_weights: Per-code weights of the box loss.
        bbox_coder, loss_cls, loss_bbox, loss_iou: Configs (``loss_iou`` must have weight 0;
            StreamPETR has no 3D IoU loss).
        train_cfg: ``dict(assigner=...)`` (mmdet3d's other ``pts`` keys are accepted).
        depth_num, LID, depth_start, position_range: Frustum depth bins and normalisation.
        scalar, noise_scale, noise_trans, dn_weight, split: DN groups and noise.
        with_position: Must be True (3D position embedding).
        code_size: Must be 10.
    """

    def __init__(
        self,
        num_classes: int,
        transformer: dict,
        bbox_coder: dict,
        in_channels: int = 256,
        stride: int = 16,
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
        depth_num: int = 64,
        LID: bool = False,  # noqa: N803 - upstream config key
        depth_start: float = 1.0,
        position_range: Sequence[float] = (-65.0, -65.0, -8.0, 65.0, 65.0, 8.0),
        scalar: int = 5,
        noise_scale: float = 0.4,
        noise_trans: float = 0.0,
        dn_weight: float = 1.0,
        split: float = 0.5,
        with_position: bool = True,
        code_size: int = CODE_DIM,
    ) -> None:
        _check_supported(in_channels, embed_dims, num_propagated, memory_len, topk_proposals,
                         depth_num, with_position, code_size, loss_iou)
        constants = dict(position_range=torch.tensor(position_range, dtype=torch.float32),
                         coords_d=frustum_depth_bins(depth_num, depth_start, float(position_range[3]), LID))
        super().__init__(
            num_classes, transformer, bbox_coder, in_channels=in_channels, stride=stride,
            embed_dims=embed_dims, num_query=num_query, num_reg_fcs=num_reg_fcs,
            memory_len=memory_len, topk_proposals=topk_proposals, num_propagated=num_propagated,
            with_dn=with_dn, with_ego_pos=with_ego_pos, match_with_velo=match_with_velo,
            match_costs=match_costs, sync_cls_avg_factor=sync_cls_avg_factor,
            code_weights=code_weights, loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou,
            train_cfg=train_cfg, dn_weight=dn_weight, split=split,
            paper_constants=constants)
        self.scalar = scalar
        self.bbox_noise_scale = noise_scale
        self.bbox_noise_trans = noise_trans

    # ------------------------------------------------------------------ construction
    def _init_image_layers(self) -> None:
        """The 3D position encoder of the frustum points, the token projection and the
        featurised PE (upstream names)."""
        dims = self.embed_dims
        self.position_encoder = nn.Sequential(
            nn.Linear(self.coords_d.numel() * 3, dims * 4), nn.ReLU(), nn.Linear(dims * 4, dims))
        self.memory_embed = nn.Sequential(nn.Linear(self.in_channels, dims), nn.ReLU(),
                                          nn.Linear(dims, dims))
        self.featurized_pe = SELayer_Linear(dims)

    def _build_spatial_alignment(self) -> nn.Module:
        """MLN on each token's focal lengths and two frustum points (8 values)."""
        return MLN(8, f_dim=self.embed_dims)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        img_feats: Tensor,
        locations: Tensor,
        lidar2img: Tensor,
        intrinsics: Tensor,
        ego_pose: Tensor,
        ego_pose_inv: Tensor,
        timestamp: Tensor,
        prev_exists: Tensor,
        pad_shape: tuple[int, int],
        topk_indexes: Optional[Tensor] = None,
        gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
        gt_labels_3d: Optional[Sequence[Tensor]] = None,
        pseudo_bboxes_3d: Optional[Sequence[Tensor]] = None,
        pseudo_labels_3d: Optional[Sequence[Tensor]] = None,
    ) -> dict:
        """Decode one frame and update the memory.

        Args:
            img_feats: ``(B, N, C, H, W)`` image features.
            locations: ``(B * N, H, W, 2)`` token centres normalised by the padded size.
            lidar2img, intrinsics: ``(B, N, 4, 4)``.
            ego_pose, ego_pose_inv: ``(B, 4, 4)`` LiDAR -> global and inverse.
            timestamp: ``(B,)`` float64 seconds; prev_exists: ``(B,)`` bool.
            pad_shape: ``(pad_h, pad_w)`` of the images in pixels.
            topk_indexes: ``(B, K, 1)`` image tokens to keep (from the 2D head) or None.
            gt_bboxes_3d, gt_labels_3d: per-sample GT, used for DN queries in training.
            pseudo_bboxes_3d, pseudo_labels_3d: optional per-sample teacher pseudo targets
                ``(k_b, 9)`` / ``(k_b,)``, appended to the GT of the DN queries only.

        Returns:
            The frame's outputs, see :meth:`.SparseQueryHead._forward_frame`.
        """
        image = self._image_tokens(img_feats, locations, lidar2img, intrinsics, pad_shape, topk_indexes)
        targets = self._dn_targets(gt_bboxes_3d, gt_labels_3d, pseudo_bboxes_3d, pseudo_labels_3d)
        dn = None if targets is None else build_dn_queries(
            *targets, self.pc_range, self.num_classes, self.scalar, self.bbox_noise_scale,
            self.bbox_noise_trans, self.split)
        return self._forward_frame(image, dn, ego_pose, ego_pose_inv, timestamp, prev_exists)

    def _image_tokens(self, img_feats: Tensor, locations: Tensor, lidar2img: Tensor,
                      intrinsics: Tensor, pad_shape: tuple[int, int],
                      topk_indexes: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Image tokens ``(B, K, C)`` with spatial alignment, and their 3D PE ``(B, K, C)``."""
        batch, num_cams, channels, height, width = img_feats.shape
        tokens = img_feats.permute(0, 1, 3, 4, 2).reshape(batch, -1, channels)
        tokens = topk_gather(tokens, topk_indexes)
        points = self.token_points(locations, pad_shape, lidar2img, topk_indexes)
        pos_embed = self.position_encoder(inverse_sigmoid(points).flatten(-2))
        focal = camera_focal_tokens(intrinsics, height * width, topk_indexes)
        cone = torch.cat([focal, points[:, :, -1], points[:, :, -_CONE_BIN_FROM_END]], dim=-1)
        tokens = self.spatial_alignment(self.memory_embed(tokens), cone)
        return tokens, self.featurized_pe(pos_embed, tokens)

    def token_points(self, locations: Tensor, pad_shape: tuple[int, int], lidar2img: Tensor,
                     topk_indexes: Optional[Tensor]) -> Tensor:
        """Frustum points ``(B, K, D, 3)`` of the kept image tokens, normalised to
        ``position_range`` (see :func:`.petr_position.frustum_points`).

        Args:
            locations: ``(B * N, H, W, 2)`` token centres; pad_shape: ``(pad_h, pad_w)``.
            lidar2img: ``(B, N, 4, 4)``; topk_indexes: ``(B, K, 1)`` kept tokens or None.
        """
        return frustum_points(locations, pad_shape, self.coords_d, lidar2img, self.position_range,
                              topk_indexes)

    def _decode(self, image: tuple[Tensor, Tensor], dn: Optional[DenoisingQueries], tgt: Tensor,
                query_pos: Tensor, reference_points: Tensor, temp_memory: Tensor,
                temp_pos: Tensor) -> Tensor:
        """PETR's temporal decoder on the image tokens and their 3D PE ``image`` (from
        :meth:`_image_tokens`), DN groups masked from each other and from the rest."""
        memory, pos_embed = image
        attn_mask = None
        if dn is not None:
            num_queries = tgt.shape[1] - dn.pad_size
            attn_mask = dn_self_attention_mask(dn.num_groups, dn.group_size, num_queries,
                                               num_queries + temp_memory.shape[1], tgt.device)
        return self.transformer(memory, tgt, query_pos, pos_embed, attn_mask, temp_memory, temp_pos)


def _check_supported(in_channels: int, embed_dims: int, num_propagated: int, memory_len: int,
                     topk_proposals: int, depth_num: int, with_position: bool, code_size: int,
                     loss_iou: Optional[dict]) -> None:
    """Raise a clear error for StreamPETRHead settings this implementation does not cover."""
    problems = shared_setting_problems(embed_dims, num_propagated, memory_len, topk_proposals,
                                       code_size)
    if not with_position:
        problems.append("with_position=False (the 3D position embedding is always used)")
    if depth_num <= _CONE_BIN_FROM_END:
        problems.append(f"depth_num={depth_num} (must exceed {_CONE_BIN_FROM_END}: the spatial "
                        "alignment reads depth bin depth_num - 30)")
    if loss_iou is not None and loss_iou.get("loss_weight", 1.0) != 0:
        problems.append(f"loss_iou={loss_iou} (StreamPETR has no 3D IoU loss; weight must be 0)")
    if in_channels <= 0:
        problems.append(f"in_channels={in_channels}")
    if problems:
        raise ValueError("StreamPETRHead does not support: " + "; ".join(problems))
