"""StreamPETR's 3D query head: object-centric temporal modelling with a memory queue.

One frame: image tokens get a 3D position embedding (:mod:`.petr_position`), spatial MLN
alignment on the camera focal lengths and a featurised PE; learnable reference points
(plus DN queries in training) become queries; the memory queue, moved into the current
frame, supplies ``num_propagated`` extra queries and further self-attention keys, both
aligned by MLN on their motion and age; the decoder runs; per-layer branches predict
classes and box codes; the top-k queries are pushed back into the memory (the temporal
parts, shared with RayDN, are :class:`.temporal_query_head.TemporalQueryHead`).
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM
from ...registry import MODELS, TASK_UTILS
from ..utils.denoising import DenoisingQueries, build_dn_queries, dn_self_attention_mask
from ..utils.memory_queue import MemoryQueue
from ..utils.misc import inverse_sigmoid, topk_gather
from ..utils.mln import MLN, SELayer_Linear
from ..utils.positional_encoding import pos2posemb3d
from .petr_position import camera_focal_tokens, frustum_depth_bins, frustum_points
from .query_branches import build_cls_branch, build_reg_branch, check_tied_copies
from .saved_constants import FixedEmbedding, check_loaded_constants
from .dn_ground_truth import dn_ground_truth
from .set_losses import build_set_losses
from .temporal_query_head import CONTENT_SHIFT_STD, TemporalQueryHead

_EGO_MOTION_DIMS = 180  # nerf encoding (6 frequencies, sin + cos) of velo 2 + dt 1 + pose 12
_CONE_BIN_FROM_END = 30  # upstream takes coords3d[..., -90:-87]: bin D - 30 of the frustum


@MODELS.register_module()
class StreamPETRHead(TemporalQueryHead):
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
        super().__init__()
        _check_supported(in_channels, embed_dims, num_propagated, memory_len, topk_proposals,
                         depth_num, with_position, code_size, loss_iou)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stride = stride
        self.embed_dims = embed_dims
        self.num_query = num_query
        self.memory_len = memory_len
        self.topk_proposals = topk_proposals
        self.num_propagated = num_propagated
        self.with_dn = with_dn
        self.with_ego_pos = with_ego_pos
        self.match_with_velo = match_with_velo
        self.sync_cls_avg_factor = sync_cls_avg_factor
        self.scalar = scalar
        self.bbox_noise_scale = noise_scale
        self.bbox_noise_trans = noise_trans
        self.dn_weight = dn_weight
        self.split = split
        self.loss_cls, self.loss_bbox, self.assigner = build_set_losses(
            "StreamPETRHead", loss_cls, loss_bbox, loss_iou, train_cfg)
        self.bbox_coder = TASK_UTILS.build(copy.deepcopy(bbox_coder))
        self.transformer = MODELS.build(copy.deepcopy(transformer))
        self.num_pred = self.transformer.decoder.num_layers
        self._register_constants(code_weights, match_costs, position_range, depth_num, LID,
                                 depth_start)
        self._init_layers(num_reg_fcs)
        self.memory = MemoryQueue(memory_len, embed_dims)

    # ------------------------------------------------------------------ construction
    def _register_constants(self, code_weights: Optional[Sequence[float]],
                            match_costs: Optional[Sequence[float]],
                            position_range: Sequence[float], depth_num: int, lid: bool,
                            depth_start: float) -> None:
        """Persistent buffers carried by published checkpoints (checked on load)."""
        code_weights = [1.0] * 8 + [0.2, 0.2] if code_weights is None else list(code_weights)
        if len(code_weights) != CODE_DIM:
            raise ValueError(f"code_weights needs {CODE_DIM} values, got {code_weights}")
        match_costs = code_weights if match_costs is None else list(match_costs)
        self.register_buffer("code_weights", torch.tensor(code_weights, dtype=torch.float32))
        self.register_buffer("match_costs", torch.tensor(match_costs, dtype=torch.float32))
        self.register_buffer("pc_range", torch.tensor(self.bbox_coder.pc_range, dtype=torch.float32))
        self.register_buffer("position_range", torch.tensor(position_range, dtype=torch.float32))
        self.register_buffer("coords_d", frustum_depth_bins(depth_num, depth_start,
                                                            float(position_range[3]), lid))

    def _init_layers(self, num_reg_fcs: int) -> None:
        """Build the branches, encoders and alignment modules (upstream names)."""
        dims = self.embed_dims
        cls_branch = build_cls_branch(dims, self.num_classes, num_reg_fcs)
        reg_branch = build_reg_branch(dims, CODE_DIM, num_reg_fcs)
        self.cls_branches = nn.ModuleList([cls_branch] * self.num_pred)
        self.reg_branches = nn.ModuleList([reg_branch] * self.num_pred)
        self.position_encoder = nn.Sequential(
            nn.Linear(self.coords_d.numel() * 3, dims * 4), nn.ReLU(), nn.Linear(dims * 4, dims))
        self.memory_embed = nn.Sequential(nn.Linear(self.in_channels, dims), nn.ReLU(),
                                          nn.Linear(dims, dims))
        self.featurized_pe = SELayer_Linear(dims)
        self.reference_points = nn.Embedding(self.num_query, 3)
        nn.init.uniform_(self.reference_points.weight, 0.0, 1.0)
        if self.num_propagated > 0:
            self.pseudo_reference_points = FixedEmbedding(self.num_propagated, 3)
        self.query_embedding = nn.Sequential(nn.Linear(dims * 3 // 2, dims), nn.ReLU(),
                                             nn.Linear(dims, dims))
        self.spatial_alignment = MLN(8, f_dim=dims)
        self.time_embedding = nn.Sequential(nn.Linear(dims, dims), nn.LayerNorm(dims))
        if self.with_ego_pos:
            self.ego_pose_pe = MLN(_EGO_MOTION_DIMS, f_dim=dims)
            self.ego_pose_memory = MLN(_EGO_MOTION_DIMS, f_dim=dims, beta_bias_std=CONTENT_SHIFT_STD)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Check the saved constants and the tied branch copies before loading."""
        check_loaded_constants(self, state_dict, prefix,
                               ("code_weights", "match_costs", "pc_range", "position_range",
                                "coords_d"))
        check_tied_copies(state_dict, prefix, ("cls_branches", "reg_branches"), self.num_pred)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

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
            ``all_cls_scores`` ``(L, B, Q', C)`` and ``all_bbox_preds`` ``(L, B, Q', 10)``
            for the ``Q' = num_query + num_propagated`` non-DN queries, ``query_feats``
            ``(L, B, Q', embed_dims)``, ``reference_points`` ``(B, Q', 3)`` (normalised),
            ``dn`` (:class:`DenoisingQueries` or None) and ``dn_cls_scores`` /
            ``dn_bbox_preds`` ``(L, B, pad_size, ...)``.
        """
        batch = img_feats.shape[0]
        self._pre_update_memory(prev_exists, timestamp, ego_pose_inv)
        memory, pos_embed = self._image_tokens(img_feats, locations, lidar2img, intrinsics,
                                               pad_shape, topk_indexes)
        dn = self._denoising(*dn_ground_truth(gt_bboxes_3d, gt_labels_3d, pseudo_bboxes_3d,
                                              pseudo_labels_3d))
        reference_points = self.reference_points.weight.unsqueeze(0).expand(batch, -1, -1)
        if dn is not None:
            reference_points = torch.cat([dn.reference_points, reference_points], dim=1)
        query_pos = self.query_embedding(pos2posemb3d(reference_points, self.embed_dims // 2))
        tgt, query_pos, reference_points, temp_memory, temp_pos = self._temporal_alignment(
            query_pos, torch.zeros_like(query_pos), reference_points)
        reference_points = self.query_reference_points(reference_points)
        pad = 0 if dn is None else dn.pad_size
        attn_mask = None if dn is None else dn_self_attention_mask(
            dn.num_groups, dn.group_size, tgt.shape[1] - pad, tgt.shape[1] - pad + temp_memory.shape[1],
            tgt.device)
        outs_dec = torch.nan_to_num(
            self.transformer(memory, tgt, query_pos, pos_embed, attn_mask, temp_memory, temp_pos))
        all_cls, all_bbox = self._predict_boxes(outs_dec, reference_points)
        self._post_update_memory(all_cls[-1, :, pad:], all_bbox[-1, :, pad:], outs_dec[-1, :, pad:],
                                 ego_pose, timestamp)
        return dict(all_cls_scores=all_cls[:, :, pad:], all_bbox_preds=all_bbox[:, :, pad:],
                    query_feats=outs_dec[:, :, pad:], reference_points=reference_points[:, pad:],
                    dn=dn, dn_cls_scores=all_cls[:, :, :pad], dn_bbox_preds=all_bbox[:, :, :pad])

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
        """Frustum points ``(B, K, D, 3)`` of the image tokens, normalised to
        ``position_range`` (``locations`` ``(B * N, H, W, 2)``, ``lidar2img`` ``(B, N, 4, 4)``,
        ``topk_indexes`` ``(B, K, 1)`` or None); called once per forward."""
        return frustum_points(locations, pad_shape, self.coords_d, lidar2img, self.position_range,
                              topk_indexes)

    def _denoising(self, gt_bboxes_3d: Optional[Sequence[Tensor]],
                   gt_labels_3d: Optional[Sequence[Tensor]]) -> Optional[DenoisingQueries]:
        """DN queries in training when GT is given, else None."""
        if not (self.training and self.with_dn and gt_bboxes_3d is not None):
            return None
        if gt_labels_3d is None:
            raise ValueError("StreamPETRHead: gt_bboxes_3d given without gt_labels_3d")
        return build_dn_queries(gt_bboxes_3d, gt_labels_3d, self.pc_range, self.num_classes,
                                self.scalar, self.bbox_noise_scale, self.bbox_noise_trans, self.split)


def _check_supported(in_channels: int, embed_dims: int, num_propagated: int, memory_len: int,
                     topk_proposals: int, depth_num: int, with_position: bool, code_size: int,
                     loss_iou: Optional[dict]) -> None:
    """Raise a clear error for StreamPETRHead settings this implementation does not cover."""
    problems = []
    if not with_position:
        problems.append("with_position=False (the 3D position embedding is always used)")
    if code_size != CODE_DIM:
        problems.append(f"code_size={code_size} (only {CODE_DIM})")
    if embed_dims % 2:
        problems.append(f"odd embed_dims={embed_dims}")
    if not 0 <= num_propagated <= memory_len or not 0 < topk_proposals <= memory_len:
        problems.append(f"num_propagated={num_propagated} / topk_proposals={topk_proposals} "
                        f"must lie within memory_len={memory_len}")
    if depth_num <= _CONE_BIN_FROM_END:
        problems.append(f"depth_num={depth_num} (must exceed {_CONE_BIN_FROM_END}: the spatial "
                        "alignment reads depth bin depth_num - 30)")
    if loss_iou is not None and loss_iou.get("loss_weight", 1.0) != 0:
        problems.append(f"loss_iou={loss_iou} (StreamPETR has no 3D IoU loss; weight must be 0)")
    if in_channels <= 0:
        problems.append(f"in_channels={in_channels}")
    if problems:
        raise ValueError("StreamPETRHead does not support: " + "; ".join(problems))
