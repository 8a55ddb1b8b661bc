"""RayDN's 3D query head: StreamPETR's sparse temporal head with ray denoising.

One frame: every FPN level's image tokens are aligned by an MLN on the camera
(``[fx/1e3, fy/1e3, extrinsics[:3, :4]]``; no 3D position embedding); learnable reference
points (plus, in training, box-noise and ray denoising queries) become queries; the memory
queue, moved into the current frame, supplies ``num_propagated`` extra queries and further
self-attention keys, aligned by MLN on their motion and age; the decoder (self-attention +
deformable feature aggregation around fixed reference points) runs; tied per-layer branches
predict classes and box codes; the top-k queries are pushed back into the memory. The
temporal parts are StreamPETR's, shared through :class:`.temporal_query_head.TemporalQueryHead`.

State-dict names follow the published RayDN checkpoints (``cls_branches.{i}``,
``reference_points``, ``pseudo_reference_points``, ``query_embedding``,
``spatial_alignment``, ``time_embedding``, ``ego_pose_pe``, ``ego_pose_memory``,
``transformer.decoder.layers.{i}``, and the constants ``code_weights``, ``match_costs``,
``pc_range``).
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM
from ...registry import MODELS, TASK_UTILS
from ..utils.denoising import DenoisingQueries
from ..utils.memory_queue import MemoryQueue
from ..utils.mln import MLN
from ..utils.positional_encoding import pos2posemb3d
from ..utils.ray_denoising import RayDenoising
from .query_branches import build_cls_branch, build_reg_branch, check_tied_copies
from .saved_constants import FixedEmbedding, check_loaded_constants
from .dn_ground_truth import dn_ground_truth
from .set_losses import build_set_losses
from .temporal_query_head import CONTENT_SHIFT_STD, TemporalQueryHead

_CAMERA_DIMS = 14  # fx / 1e3, fy / 1e3 and the 12 entries of extrinsics[:3, :4]
_EGO_MOTION_DIMS = 180  # nerf encoding (6 frequencies, sin + cos) of velo 2 + dt 1 + pose 12
_CONSTANTS = ("code_weights", "match_costs", "pc_range")


@MODELS.register_module()
class RayDNHead(TemporalQueryHead):
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
        super().__init__()
        _check_supported(in_channels, embed_dims, num_propagated, memory_len, topk_proposals,
                         normedlinear, code_size, test_cfg)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stride = list(stride)
        self.embed_dims = embed_dims
        self.num_query = num_query
        self.memory_len = memory_len
        self.topk_proposals = topk_proposals
        self.num_propagated = num_propagated
        self.with_dn = with_dn
        self.with_ego_pos = with_ego_pos
        self.match_with_velo = match_with_velo
        self.sync_cls_avg_factor = sync_cls_avg_factor
        self.dn_weight = dn_weight
        self.split = split
        self.denoising = RayDenoising(num_classes, scalar, noise_scale, noise_trans, split,
                                      raydn_group, raydn_num, raydn_alpha, raydn_beta, raydn_radius)
        self.loss_cls, self.loss_bbox, self.assigner = build_set_losses(
            "RayDNHead", loss_cls, loss_bbox, loss_iou, train_cfg)
        self.train_cfg = train_cfg
        self.bbox_coder = TASK_UTILS.build(copy.deepcopy(bbox_coder))
        self.transformer = MODELS.build(copy.deepcopy(transformer))
        if self.transformer.embed_dims != embed_dims:
            raise ValueError(f"transformer embed_dims={self.transformer.embed_dims} differs from "
                             f"the head's embed_dims={embed_dims}")
        self.num_pred = self.transformer.decoder.num_layers
        self._register_constants(code_weights, match_costs)
        self._init_layers(num_reg_fcs)
        self.transformer.init_weights()
        self.memory = MemoryQueue(memory_len, embed_dims)

    def _register_constants(self, code_weights: Optional[Sequence[float]],
                            match_costs: Optional[Sequence[float]]) -> None:
        """Persistent buffers carried by published checkpoints (checked on load)."""
        code_weights = [1.0] * 8 + [0.2, 0.2] if code_weights is None else list(code_weights)
        if len(code_weights) != CODE_DIM:
            raise ValueError(f"code_weights needs {CODE_DIM} values, got {code_weights}")
        match_costs = code_weights if match_costs is None else list(match_costs)
        if len(match_costs) != CODE_DIM:
            raise ValueError(f"match_costs needs {CODE_DIM} values, got {match_costs}")
        self.register_buffer("code_weights", torch.tensor(code_weights, dtype=torch.float32))
        self.register_buffer("match_costs", torch.tensor(match_costs, dtype=torch.float32))
        self.register_buffer("pc_range", torch.tensor(self.bbox_coder.pc_range, dtype=torch.float32))

    def _init_layers(self, num_reg_fcs: int) -> None:
        """Build the branches, query encoders and alignment modules (upstream names)."""
        dims = self.embed_dims
        cls_branch = build_cls_branch(dims, self.num_classes, num_reg_fcs)
        reg_branch = build_reg_branch(dims, CODE_DIM, num_reg_fcs)
        self.cls_branches = nn.ModuleList([cls_branch] * self.num_pred)
        self.reg_branches = nn.ModuleList([reg_branch] * self.num_pred)
        self.reference_points = nn.Embedding(self.num_query, 3)
        nn.init.uniform_(self.reference_points.weight, 0.0, 1.0)
        if self.num_propagated > 0:
            self.pseudo_reference_points = FixedEmbedding(self.num_propagated, 3)
        self.query_embedding = nn.Sequential(nn.Linear(dims * 3 // 2, dims), nn.ReLU(),
                                             nn.Linear(dims, dims))
        self.spatial_alignment = MLN(_CAMERA_DIMS, f_dim=dims, use_ln=False)
        self.time_embedding = nn.Sequential(nn.Linear(dims, dims), nn.LayerNorm(dims))
        if self.with_ego_pos:
            self.ego_pose_pe = MLN(_EGO_MOTION_DIMS, f_dim=dims)
            self.ego_pose_memory = MLN(_EGO_MOTION_DIMS, f_dim=dims, beta_bias_std=CONTENT_SHIFT_STD)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Check the saved constants and the tied branch copies before loading."""
        check_loaded_constants(self, state_dict, prefix, _CONSTANTS)
        check_tied_copies(state_dict, prefix, ("cls_branches", "reg_branches"), self.num_pred)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

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
            ``all_cls_scores`` ``(L, B, Q', C)`` and ``all_bbox_preds`` ``(L, B, Q', 10)``
            for the ``Q' = num_query + num_propagated`` non-DN queries, ``query_feats``
            ``(L, B, Q', C)``, ``reference_points`` ``(B, Q', 3)`` (normalised), ``dn``
            (:class:`DenoisingQueries` or None), ``dn_cls_scores`` / ``dn_bbox_preds``
            ``(L, B, pad_size, ...)``.
        """
        batch = img_feats[0].shape[0]
        self._pre_update_memory(prev_exists, timestamp, ego_pose_inv)
        feat_flatten, spatial_shapes = self._image_tokens(img_feats, intrinsics, extrinsics)
        dn = self._denoising(*dn_ground_truth(gt_bboxes_3d, gt_labels_3d, pseudo_bboxes_3d,
                                              pseudo_labels_3d), lidar2img, pad_shape)
        reference_points = self.reference_points.weight.unsqueeze(0).expand(batch, -1, -1)
        pad = 0 if dn is None else dn.pad_size
        if dn is not None:
            reference_points = torch.cat([dn.reference_points.to(reference_points), reference_points], 1)
        query_pos = self.query_embedding(pos2posemb3d(reference_points, self.embed_dims // 2))
        tgt, query_pos, reference_points, temp_memory, temp_pos = self._temporal_alignment(
            query_pos, torch.zeros_like(query_pos), reference_points)
        reference_points = self.query_reference_points(reference_points)
        attn_mask = None if dn is None else self.denoising.attention_mask(
            dn, self.num_query, self.num_propagated, self.memory_len)
        outs_dec = torch.nan_to_num(self.transformer(
            tgt, query_pos, feat_flatten, spatial_shapes, reference_points, self.pc_range,
            lidar2img, pad_shape, temp_memory, temp_pos, attn_mask))
        all_cls, all_bbox = self._predict_boxes(outs_dec, reference_points)
        self._post_update_memory(all_cls[-1, :, pad:], all_bbox[-1, :, pad:], outs_dec[-1, :, pad:],
                                 ego_pose, timestamp)
        return dict(all_cls_scores=all_cls[:, :, pad:], all_bbox_preds=all_bbox[:, :, pad:],
                    query_feats=outs_dec[:, :, pad:], reference_points=reference_points[:, pad:],
                    dn=dn, dn_cls_scores=all_cls[:, :, :pad], dn_bbox_preds=all_bbox[:, :, :pad])

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

    def _denoising(self, gt_bboxes_3d: Optional[Sequence[Tensor]],
                   gt_labels_3d: Optional[Sequence[Tensor]], lidar2img: Tensor,
                   pad_shape: tuple[int, int]) -> Optional[DenoisingQueries]:
        """Box-noise and ray DN queries in training when GT is given, else None."""
        if not (self.training and self.with_dn and gt_bboxes_3d is not None):
            return None
        if gt_labels_3d is None:
            raise ValueError("RayDNHead: gt_bboxes_3d given without gt_labels_3d")
        return self.denoising(gt_bboxes_3d, gt_labels_3d, self.pc_range, lidar2img, pad_shape)


def _check_supported(in_channels: int, embed_dims: int, num_propagated: int, memory_len: int,
                     topk_proposals: int, normedlinear: bool, code_size: int,
                     test_cfg: Optional[dict]) -> None:
    """Raise a clear error for RayDNHead settings this implementation does not cover."""
    problems = []
    if in_channels != embed_dims:
        problems.append(f"in_channels={in_channels} != embed_dims={embed_dims} (image tokens "
                        "enter the decoder without a projection)")
    if embed_dims % 2:
        problems.append(f"odd embed_dims={embed_dims}")
    if not 0 <= num_propagated <= memory_len or not 0 < topk_proposals <= memory_len:
        problems.append(f"num_propagated={num_propagated} / topk_proposals={topk_proposals} "
                        f"must lie within memory_len={memory_len}")
    if normedlinear:
        problems.append("normedlinear=True (only a plain Linear classifier)")
    if code_size != CODE_DIM:
        problems.append(f"code_size={code_size} (only {CODE_DIM})")
    if test_cfg is not None:
        problems.append(f"test_cfg={test_cfg} (decoding is configured by bbox_coder)")
    if problems:
        raise ValueError("RayDNHead does not support: " + "; ".join(problems))
