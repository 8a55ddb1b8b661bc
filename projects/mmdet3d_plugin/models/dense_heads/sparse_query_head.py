"""The sparse temporal query head shared by StreamPETR and RayDN.

:class:`SparseQueryHead` owns everything the two papers share: the constructor arguments,
the set losses and assigner, the box coder, the transformer, the saved constants, the tied
cls / reg branches, the query and memory encoders, the memory queue and the checkpoint
checks. One frame: learnable reference points (DN queries first in training) become
queries; the :class:`~..temporal.memory_queue.MemoryQueue`, moved into the current frame (new
scenes start from the pseudo reference points), supplies ``num_propagated`` extra queries
and further self-attention keys, aligned with the queries by MLN on ego motion and age;
the decoder runs; the tied per-layer branches predict boxes around the reference points;
the ``topk_proposals`` most confident queries are pushed back; decoding is NMS-free.

A subclass supplies what its paper changes through hooks of :meth:`SparseQueryHead.forward`:
the image inputs and their position encoding (``_image_inputs``), the denoising queries
(``_dn_queries``), the camera MLN (``_build_spatial_alignment``), the layers its tokens
need (``_init_image_layers``) and the transformer call (``_decode``).
"""
from __future__ import annotations

import copy
from typing import Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM, CODE_X, CODE_Z
from ...registry import MODELS, TASK_UTILS
from ..denoising.denoising import DenoisingQueries
from ..utils.float32 import force_fp32
from ..temporal.memory_queue import MemoryQueue
from ..utils.misc import inverse_sigmoid, to_metric
from ..temporal.mln import MLN
from ..utils.positional_encoding import nerf_positional_encoding, pos2posemb1d, pos2posemb3d
from .dn_ground_truth import dn_targets
from .head_settings import CONTENT_SHIFT_STD, shared_setting_problems
from .query_branches import build_cls_branch, build_reg_branch, check_tied_copies
from .saved_constants import (FixedEmbedding, check_loaded_constants, code_weight_constants,
                              register_constants)
from .set_losses import (assign_set_targets, build_set_losses, denoising_losses, name_layer_losses,
                         set_prediction_losses)

_EGO_MOTION_DIMS = 180  # nerf encoding (6 frequencies, sin + cos) of velo 2 + dt 1 + pose 12


class SparseQueryHead(nn.Module):
    """Shared construction, temporal memory, box prediction, decoding and losses.

    The registered heads take these arguments (upstream names and defaults) by keyword,
    besides their paper's own.

    Args:
        num_classes: Object classes (sigmoid classification, no background logit).
        transformer: Config of the paper's transformer (its ``embed_dims`` is the head's).
        bbox_coder: Config of the ``NMSFreeCoder`` (its ``pc_range`` is the head's).
        in_channels: Image feature channels.
        stride: Feature stride(s) (documentation of the input).
        embed_dims: Query channels.
        num_query: Learnable queries.
        num_reg_fcs: Hidden layers of the cls / reg branches.
        memory_len, topk_proposals, num_propagated: Memory queue length, entries pushed
            per frame, memory entries used as queries.
        with_dn: Denoising queries in training.
        with_ego_pos: MLN alignment of queries and memory on ego motion.
        match_with_velo: Include velocity in the matching cost.
        match_costs: Per-code weights of the matching cost (default ``code_weights``).
        sync_cls_avg_factor: Average the classification normaliser over GPUs.
        code_weights: Per-code weights of the box loss.
        loss_cls, loss_bbox, loss_iou: Loss configs (``loss_iou`` weight must be 0: no 3D
            IoU loss).
        train_cfg: ``dict(assigner=...)`` (mmdet3d's other ``pts`` keys are accepted).
        scalar, noise_scale, noise_trans: Box-noise DN groups and noise.
        dn_weight, split: Weight of the DN losses; share of positive DN queries.
        code_size: Must be 10.
        paper_constants: The paper's own saved constants (name -> tensor), registered after
            ``code_weights``, ``match_costs`` and ``pc_range`` and checked on load like them.
        unsupported: What the subclass found unsupported in its own arguments, reported
            with the shared problems in one error.
    """

    #: The paper projects its image tokens to ``embed_dims`` (else ``in_channels`` must match).
    projects_image_tokens = True

    def __init__(self, num_classes: int, transformer: dict, bbox_coder: dict, *, in_channels: int = 256,
                 stride: int | list[int] = 16, embed_dims: int = 256, num_query: int = 100,
                 num_reg_fcs: int = 2, memory_len: int = 1024, topk_proposals: int = 256,
                 num_propagated: int = 256, with_dn: bool = True, with_ego_pos: bool = True,
                 match_with_velo: bool = True, match_costs: Optional[Sequence[float]] = None,
                 sync_cls_avg_factor: bool = False, code_weights: Optional[Sequence[float]] = None,
                 loss_cls: Optional[dict] = None, loss_bbox: Optional[dict] = None,
                 loss_iou: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 scalar: int = 5, noise_scale: float = 0.4, noise_trans: float = 0.0,
                 dn_weight: float = 1.0, split: float = 0.5, code_size: int = CODE_DIM,
                 paper_constants: Optional[Mapping[str, Tensor]] = None,
                 unsupported: Sequence[str] = ()) -> None:
        problems = [*unsupported, *shared_setting_problems(
            in_channels, embed_dims, num_propagated, memory_len, topk_proposals, code_size,
            self.projects_image_tokens)]
        if problems:
            raise ValueError(f"{type(self).__name__} does not support: " + "; ".join(problems))
        super().__init__()
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
            type(self).__name__, loss_cls, loss_bbox, loss_iou, train_cfg)
        self.train_cfg = train_cfg
        self.bbox_coder = TASK_UTILS.build(copy.deepcopy(bbox_coder))
        self.transformer = MODELS.build(copy.deepcopy(transformer))
        if self.transformer.embed_dims != embed_dims:
            raise ValueError(f"transformer embed_dims={self.transformer.embed_dims} differs from "
                             f"the head's embed_dims={embed_dims}")
        self.num_pred = self.transformer.decoder.num_layers
        self.constant_names = register_constants(self, dict(
            **code_weight_constants(code_weights, match_costs),
            pc_range=torch.tensor(self.bbox_coder.pc_range, dtype=torch.float32),
            **(paper_constants or {})))
        self._init_layers(num_reg_fcs)
        self.memory = MemoryQueue(memory_len, embed_dims)

    # ------------------------------------------------------------------ construction
    def _init_layers(self, num_reg_fcs: int) -> None:
        """Build the branches, encoders and alignment modules (upstream names and order)."""
        dims = self.embed_dims
        cls_branch = build_cls_branch(dims, self.num_classes, num_reg_fcs)
        reg_branch = build_reg_branch(dims, CODE_DIM, num_reg_fcs)
        self.cls_branches = nn.ModuleList([cls_branch] * self.num_pred)
        self.reg_branches = nn.ModuleList([reg_branch] * self.num_pred)
        self._init_image_layers()
        self.reference_points = nn.Embedding(self.num_query, 3)
        nn.init.uniform_(self.reference_points.weight, 0.0, 1.0)
        if self.num_propagated > 0:
            self.pseudo_reference_points = FixedEmbedding(self.num_propagated, 3)
        self.query_embedding = nn.Sequential(nn.Linear(dims * 3 // 2, dims), nn.ReLU(),
                                             nn.Linear(dims, dims))
        self.spatial_alignment = self._build_spatial_alignment()
        self.time_embedding = nn.Sequential(nn.Linear(dims, dims), nn.LayerNorm(dims))
        if self.with_ego_pos:
            self.ego_pose_pe = MLN(_EGO_MOTION_DIMS, f_dim=dims)
            self.ego_pose_memory = MLN(_EGO_MOTION_DIMS, f_dim=dims, beta_bias_std=CONTENT_SHIFT_STD)

    def _init_image_layers(self) -> None:
        """Layers of the paper's image tokens, built between the branches and the queries
        (upstream's parameter order); none by default."""

    def _build_spatial_alignment(self) -> nn.Module:
        """The paper's MLN aligning image tokens on the cameras (``spatial_alignment``)."""
        raise NotImplementedError(f"{type(self).__name__} must build its spatial_alignment")

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Check the saved constants and the tied branch copies before loading."""
        check_loaded_constants(self, state_dict, prefix, self.constant_names)
        check_tied_copies(state_dict, prefix, ("cls_branches", "reg_branches"), self.num_pred)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ one frame
    def reset_memory(self) -> None:
        """Forget the temporal memory of every batch slot."""
        self.memory.reset()

    def _pre_update_memory(self, prev_exists: Tensor, timestamp: Tensor, ego_pose_inv: Tensor) -> None:
        """Move the memory into this frame; new scenes start from the pseudo points.

        Args:
            prev_exists: ``(B,)`` bool; timestamp: ``(B,)`` float64; ego_pose_inv: ``(B, 4, 4)``.
        """
        pseudo = None
        if self.num_propagated > 0:
            pseudo = to_metric(self.pseudo_reference_points.weight, self.pc_range)
        self.memory.pre_update(prev_exists, timestamp, ego_pose_inv, pseudo)

    def forward(
        self,
        img_feats: Tensor | Sequence[Tensor],
        lidar2img: Tensor,
        intrinsics: Tensor,
        ego_pose: Tensor,
        ego_pose_inv: Tensor,
        timestamp: Tensor,
        prev_exists: Tensor,
        pad_shape: tuple[int, int],
        *,
        extrinsics: Optional[Tensor] = None,
        locations: Optional[Tensor] = None,
        topk_indexes: Optional[Tensor] = None,
        gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
        gt_labels_3d: Optional[Sequence[Tensor]] = None,
        pseudo_bboxes_3d: Optional[Sequence[Tensor]] = None,
        pseudo_labels_3d: Optional[Sequence[Tensor]] = None,
    ) -> dict:
        """Decode one frame and update the memory.

        Args:
            img_feats: the paper's image features: StreamPETR one level ``(B, N, C, H, W)``,
                RayDN ``L`` levels ``(B, N, C, H_l, W_l)``.
            lidar2img, intrinsics: ``(B, N, 4, 4)``.
            ego_pose, ego_pose_inv: ``(B, 4, 4)`` LiDAR -> global and inverse.
            timestamp: ``(B,)`` float64 seconds; prev_exists: ``(B,)`` bool.
            pad_shape: ``(pad_h, pad_w)`` of the images in pixels.
            extrinsics: ``(B, N, 4, 4)`` (RayDN's camera MLN).
            locations: ``(B * N, H, W, 2)`` token centres normalised by the padded size
                (StreamPETR's frustum points).
            topk_indexes: ``(B, K, 1)`` image tokens to keep (StreamPETR, from the 2D head).
            gt_bboxes_3d, gt_labels_3d: per-sample GT ``(M_b, 9)`` / ``(M_b,)``, used for DN
                queries in training.
            pseudo_bboxes_3d, pseudo_labels_3d: optional per-sample teacher pseudo targets
                ``(k_b, 9)`` / ``(k_b,)``, appended to the GT of the DN queries only.

        Returns:
            The frame's outputs, see :meth:`_forward_frame`.
        """
        cameras = dict(lidar2img=lidar2img, intrinsics=intrinsics, extrinsics=extrinsics,
                       locations=locations, topk_indexes=topk_indexes, pad_shape=pad_shape)
        image = self._image_inputs(img_feats, **cameras)
        targets = dn_targets(gt_bboxes_3d, gt_labels_3d, pseudo_bboxes_3d, pseudo_labels_3d,
                             self.training and self.with_dn, type(self).__name__)
        dn = None if targets is None else self._dn_queries(*targets, lidar2img, pad_shape)
        return self._forward_frame(image, dn, ego_pose, ego_pose_inv, timestamp, prev_exists)

    def _image_inputs(self, img_feats: Tensor | Sequence[Tensor], lidar2img: Tensor,
                      intrinsics: Tensor, extrinsics: Optional[Tensor], locations: Optional[Tensor],
                      topk_indexes: Optional[Tensor], pad_shape: tuple[int, int]) -> tuple:
        """The paper's image inputs of :meth:`_decode` (tokens and what places them)."""
        raise NotImplementedError(f"{type(self).__name__} must build its image inputs")

    def _dn_queries(self, boxes: list[Tensor], labels: list[Tensor], lidar2img: Tensor,
                    pad_shape: tuple[int, int]) -> DenoisingQueries:
        """The paper's denoising queries of the per-sample targets ``(M_b, 9)`` / ``(M_b,)``."""
        raise NotImplementedError(f"{type(self).__name__} must build its denoising queries")

    def _forward_frame(self, image: tuple, dn: Optional[DenoisingQueries], ego_pose: Tensor,
                       ego_pose_inv: Tensor, timestamp: Tensor, prev_exists: Tensor) -> dict:
        """Queries, temporal alignment, decoder, boxes and memory update of one frame.

        Args:
            image: the paper's image inputs of the decoder (passed to :meth:`_decode`).
            dn: the frame's denoising queries or None.
            ego_pose, ego_pose_inv: ``(B, 4, 4)`` LiDAR -> global and inverse.
            timestamp: ``(B,)`` float64 seconds; prev_exists: ``(B,)`` bool.

        Returns:
            ``all_cls_scores`` ``(L, B, Q', C)`` and ``all_bbox_preds`` ``(L, B, Q', 10)``
            for the ``Q' = num_query + num_propagated`` non-DN queries, ``query_feats``
            ``(L, B, Q', embed_dims)``, ``reference_points`` ``(B, Q', 3)`` (normalised),
            ``dn`` and ``dn_cls_scores`` / ``dn_bbox_preds`` ``(L, B, pad_size, ...)``.
        """
        self._pre_update_memory(prev_exists, timestamp, ego_pose_inv)
        reference_points = self.reference_points.weight.unsqueeze(0).expand(ego_pose.shape[0], -1, -1)
        pad = 0 if dn is None else dn.pad_size
        if dn is not None:
            reference_points = torch.cat([dn.reference_points.to(reference_points), reference_points], 1)
        query_pos = self.query_embedding(pos2posemb3d(reference_points, self.embed_dims // 2))
        tgt, query_pos, reference_points, temp_memory, temp_pos = self._temporal_alignment(
            query_pos, torch.zeros_like(query_pos), reference_points)
        reference_points = self.query_reference_points(reference_points)
        outs_dec = torch.nan_to_num(self._decode(image, dn, tgt, query_pos, reference_points,
                                                 temp_memory, temp_pos))
        all_cls, all_bbox = self._predict_boxes(outs_dec, reference_points)
        self.memory.push_most_confident(self.topk_proposals, all_cls[-1, :, pad:], all_bbox[-1, :, pad:],
                                        outs_dec[-1, :, pad:], ego_pose, timestamp)
        return dict(all_cls_scores=all_cls[:, :, pad:], all_bbox_preds=all_bbox[:, :, pad:],
                    query_feats=outs_dec[:, :, pad:], reference_points=reference_points[:, pad:],
                    dn=dn, dn_cls_scores=all_cls[:, :, :pad], dn_bbox_preds=all_bbox[:, :, :pad])

    def query_reference_points(self, reference_points: Tensor) -> Tensor:
        """The reference points of all queries, ``(B, Q, 3)`` normalised to ``pc_range``, DN
        queries first, then the learnable and the propagated ones.

        Returns its input unchanged: it is the named point at which distillation records
        the reference points the decoder and the box branches use.
        """
        return reference_points

    def _temporal_alignment(self, query_pos: Tensor, tgt: Tensor, reference_points: Tensor
                            ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Align queries and memory on ego motion and age; append the propagated queries.

        Args:
            query_pos, tgt: ``(B, Q, C)``; reference_points: ``(B, Q, 3)`` normalised.

        Returns:
            ``tgt, query_pos (B, Q + P, C)``, ``reference_points (B, Q + P, 3)`` and the
            remaining memory ``temp_memory, temp_pos (B, memory_len - P, C)``.
        """
        memory = self.memory
        temp_reference = memory.normalised_reference_points(self.pc_range)
        temp_pos = self.query_embedding(pos2posemb3d(temp_reference, self.embed_dims // 2))
        temp_memory = memory.embedding
        if self.with_ego_pos:
            eye = torch.eye(4, device=tgt.device)[:3].flatten()
            own_motion = torch.cat([reference_points.new_zeros(*tgt.shape[:2], 3),
                                    eye.expand(*tgt.shape[:2], 12)], dim=-1)
            own_motion = nerf_positional_encoding(own_motion)
            tgt = self.ego_pose_memory(tgt, own_motion)
            query_pos = self.ego_pose_pe(query_pos, own_motion)
            memory_motion = nerf_positional_encoding(torch.cat(
                [memory.velo, memory.timestamp.float(), memory.egopose[..., :3, :].flatten(-2)], -1))
            temp_pos = self.ego_pose_pe(temp_pos, memory_motion)
            temp_memory = self.ego_pose_memory(temp_memory, memory_motion)
        query_pos = query_pos + self.time_embedding(
            pos2posemb1d(query_pos.new_zeros(*query_pos.shape[:2], 1), self.embed_dims))
        temp_pos = temp_pos + self.time_embedding(
            pos2posemb1d(memory.timestamp.float(), self.embed_dims))
        num = self.num_propagated
        tgt = torch.cat([tgt, temp_memory[:, :num]], dim=1)
        query_pos = torch.cat([query_pos, temp_pos[:, :num]], dim=1)
        reference_points = torch.cat([reference_points, temp_reference[:, :num]], dim=1)
        return tgt, query_pos, reference_points, temp_memory[:, num:], temp_pos[:, num:]

    def _decode(self, image: tuple, dn: Optional[DenoisingQueries], tgt: Tensor, query_pos: Tensor,
                reference_points: Tensor, temp_memory: Tensor, temp_pos: Tensor) -> Tensor:
        """The paper's transformer call: decoder outputs ``(L, B, Q, embed_dims)``.

        Args:
            image: what the subclass passed to :meth:`_forward_frame`.
            dn: the denoising queries (the first ``pad_size`` queries) or None.
            tgt, query_pos: ``(B, Q, C)``; reference_points: ``(B, Q, 3)`` normalised.
            temp_memory, temp_pos: ``(B, M, C)`` memory keys of the self-attention.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _decode")

    def _predict_boxes(self, outs_dec: Tensor, reference_points: Tensor) -> tuple[Tensor, Tensor]:
        """Per-layer class logits ``(L, B, Q, C)`` and box codes ``(L, B, Q, 10)``."""
        reference = inverse_sigmoid(reference_points)
        classes, boxes = [], []
        for layer, feats in enumerate(outs_dec):
            classes.append(self.cls_branches[layer](feats))
            boxes.append(self.box_codes(layer, feats, reference))
        return torch.stack(classes), torch.stack(boxes)

    def box_codes(self, layer: int, feats: Tensor, reference: Tensor) -> Tensor:
        """Box codes ``(B, Q, 10)`` of decoder layer ``layer`` with metric centres.

        Args:
            layer: decoder layer index; feats: its outputs ``(B, Q, C)``.
            reference: ``inverse_sigmoid`` of the normalised reference points ``(B, Q, 3)``.

        Centres are ``sigmoid(reg + reference)`` mapped to ``pc_range``; the other codes are
        the branch's outputs.
        """
        codes = self.reg_branches[layer](feats)
        centers = to_metric((codes[..., CODE_X:CODE_Z + 1] + reference).sigmoid(), self.pc_range)
        return torch.cat([centers, codes[..., CODE_Z + 1:]], dim=-1)

    # ------------------------------------------------------------------ outputs
    def predict(self, preds: dict) -> list[dict[str, Tensor]]:
        """NMS-free decoding of the last layer into B dicts ``boxes_3d (K, 9)``,
        ``scores_3d (K,)``, ``labels_3d (K,)`` (LiDAR frame, box layout)."""
        decoded = self.bbox_coder.decode({"all_cls_scores": preds["all_cls_scores"],
                                          "all_bbox_preds": preds["all_bbox_preds"]})
        return [dict(boxes_3d=d["bboxes"], scores_3d=d["scores"], labels_3d=d["labels"].long())
                for d in decoded]

    @force_fp32
    def loss(self, gt_bboxes_3d: Sequence[Tensor], gt_labels_3d: Sequence[Tensor],
             preds: dict) -> dict[str, Tensor]:
        """Set-prediction losses of every decoder layer, plus the DN losses.

        Args:
            gt_bboxes_3d: B tensors ``(M_b, 9)``; gt_labels_3d: B tensors ``(M_b,)``.
            preds: the output of the head's ``forward``.

        Returns:
            ``loss_cls``, ``loss_bbox``, ``d{i}.loss_cls``, ``d{i}.loss_bbox``, and with DN
            enabled in training ``dn_loss_cls``, ``dn_loss_bbox``, ``d{i}.dn_loss_*`` (zero
            when the batch holds no GT box).
        """
        if self.assigner is None:
            raise RuntimeError(f"{type(self).__name__}.loss needs train_cfg with an 'assigner'")
        weights = (self.code_weights, self.sync_cls_avg_factor)
        losses_cls, losses_bbox = [], []
        layer_targets = assign_set_targets(self.assigner, preds["all_cls_scores"], preds["all_bbox_preds"], gt_bboxes_3d,
                                           gt_labels_3d, self.num_classes, self.match_costs, self.match_with_velo)
        for cls_scores, bbox_preds, targets in zip(preds["all_cls_scores"], preds["all_bbox_preds"],
                                                   layer_targets):
            loss_c, loss_b = set_prediction_losses(cls_scores, bbox_preds, targets, self.loss_cls,
                                                   self.loss_bbox, *weights)
            losses_cls.append(loss_c)
            losses_bbox.append(loss_b)
        named = name_layer_losses("", losses_cls, losses_bbox)
        if self.with_dn and self.training:
            named.update(self._dn_losses(preds))
        return named

    def _dn_losses(self, preds: dict) -> dict[str, Tensor]:
        """DN losses of every layer (zeros, still in the graph, when there is no DN query)."""
        dn: Optional[DenoisingQueries] = preds["dn"]
        if dn is None:
            zero = preds["all_cls_scores"].sum() * 0.0
            zeros = [zero] * preds["all_cls_scores"].shape[0]
            return name_layer_losses("dn_", zeros, zeros)
        losses_cls, losses_bbox = [], []
        for cls_scores, bbox_preds in zip(preds["dn_cls_scores"], preds["dn_bbox_preds"]):
            loss_c, loss_b = denoising_losses(cls_scores, bbox_preds, dn, self.loss_cls,
                                              self.loss_bbox, self.code_weights, self.split,
                                              self.sync_cls_avg_factor)
            losses_cls.append(self.dn_weight * loss_c)
            losses_bbox.append(self.dn_weight * loss_b)
        return name_layer_losses("dn_", losses_cls, losses_bbox)
