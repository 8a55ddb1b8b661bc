"""The temporal machinery shared by the StreamPETR and RayDN sparse query heads.

Both heads keep a :class:`~..utils.memory_queue.MemoryQueue` of past queries: before the
decoder it is moved into the current frame (new scenes start from the pseudo reference
points), its entries and the current queries are aligned by MLN on ego motion and age, and
``num_propagated`` of them join the queries; after the decoder the ``topk_proposals`` most
confident queries are pushed back. Boxes are predicted around the reference points by the
tied per-layer branches and decoded NMS-free.

**Queries without content.** The learnable queries' content (``tgt``) is zero, and on a
frame that starts a scene the memory holds no embedding either, so every token the first
self-attention sees carries the same content, ``ego_pose_memory``'s shift ``beta(c)``. With
upstream's initialisation (``beta = 0``) that content is exactly zero: the first post-norm
LayerNorm then receives a vector of zero variance and multiplies its gradient by
``1 / sqrt(eps)`` (about 316), again at the next norm. Measured: the first step of a
from-scratch synthetic R18 had a gradient norm of 5.2e4 (4.1e4 for the R50) against 60-120
on the next steps, so the global clip at 35 scaled that step's update by 1e-3; at the
initial weights this repeats on every frame that starts a scene. Upstream's code has the
same forward and initialisation, hence the same gradient. Once ``beta`` has trained away
from zero (a few optimiser steps), the spike is gone. The heads therefore start
``ego_pose_memory`` with a random shared shift (:data:`CONTENT_SHIFT_STD`): queries without
content start from a well-conditioned vector. It changes the initialisation only, not the
state-dict layout or the forward of trained weights.

A subclass provides (as both heads do, under the published checkpoint names):
``embed_dims``, ``num_propagated``, ``topk_proposals``, ``with_ego_pos``, ``memory``,
``pc_range`` (buffer ``[6]``), ``pseudo_reference_points``, ``query_embedding``,
``time_embedding``, ``ego_pose_pe`` / ``ego_pose_memory`` (with ``with_ego_pos``),
``cls_branches`` / ``reg_branches`` and ``bbox_coder``, and for
the losses (:meth:`TemporalQueryHead.loss`) ``num_classes``, ``assigner``, ``loss_cls``,
``loss_bbox``, ``code_weights``, ``match_costs``, ``match_with_velo``,
``sync_cls_avg_factor``, ``with_dn``, ``dn_weight`` and ``split``.
"""
from __future__ import annotations

import torch
from typing import Optional, Sequence

from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_VX, CODE_VY, CODE_X, CODE_Z
from ..utils.denoising import DenoisingQueries
from ..utils.float32 import force_fp32
from ..utils.misc import inverse_sigmoid, topk_gather
from ..utils.positional_encoding import nerf_positional_encoding, pos2posemb1d, pos2posemb3d
from .set_losses import assign_set_targets, denoising_losses, name_layer_losses, set_prediction_losses

#: Standard deviation of the initial shift of ``ego_pose_memory`` (see the module docstring).
CONTENT_SHIFT_STD = 0.1


class TemporalQueryHead(nn.Module):
    """Memory update, temporal alignment, box prediction, decoding and losses of a sparse
    query head."""

    def reset_memory(self) -> None:
        """Forget the temporal memory of every batch slot."""
        self.memory.reset()

    def _pre_update_memory(self, prev_exists: Tensor, timestamp: Tensor, ego_pose_inv: Tensor) -> None:
        """Move the memory into this frame; new scenes start from the pseudo points."""
        pseudo = None
        if self.num_propagated > 0:
            span = self.pc_range[3:] - self.pc_range[:3]
            pseudo = self.pseudo_reference_points.weight * span + self.pc_range[:3]
        self.memory.pre_update(prev_exists, timestamp, ego_pose_inv, pseudo)

    def _temporal_alignment(self, query_pos: Tensor, tgt: Tensor, reference_points: Tensor
                            ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Align queries and memory on ego motion and age; append the propagated queries.

        Args:
            query_pos, tgt: ``(B, Q, C)``; reference_points: ``(B, Q, 3)`` normalised.

        Returns:
            ``tgt, query_pos (B, Q + P, C)``, ``reference_points (B, Q + P, 3)`` and the
            remaining memory ``temp_memory, temp_pos (B, memory_len - P, C)``.
        """
        memory, span = self.memory, self.pc_range[3:] - self.pc_range[:3]
        temp_reference = (memory.reference_point - self.pc_range[:3]) / span
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

    def _predict_boxes(self, outs_dec: Tensor, reference_points: Tensor) -> tuple[Tensor, Tensor]:
        """Per-layer class logits ``(L, B, Q, C)`` and box codes ``(L, B, Q, 10)``.

        Centres are ``sigmoid(reg + inverse_sigmoid(reference))`` mapped to ``pc_range``.
        """
        reference = inverse_sigmoid(reference_points)
        classes, boxes = [], []
        for layer, feats in enumerate(outs_dec):
            classes.append(self.cls_branches[layer](feats))
            boxes.append(self.box_codes(layer, feats, reference))
        return torch.stack(classes), torch.stack(boxes)

    def box_codes(self, layer: int, feats: Tensor, reference: Tensor) -> Tensor:
        """Box codes ``(B, Q, 10)`` (metric centres) of decoder layer ``layer``.

        Called once per layer, in order (a distillation method tap's ``call`` is the layer).

        Args:
            layer: the decoder layer; feats: its output ``(B, Q, C)``.
            reference: ``(B, Q, 3)`` reference points in logit space (``inverse_sigmoid``).
        """
        span, low = self.pc_range[3:] - self.pc_range[:3], self.pc_range[:3]
        codes = self.reg_branches[layer](feats)
        centers = (codes[..., CODE_X:CODE_Z + 1] + reference).sigmoid() * span + low
        return torch.cat([centers, codes[..., CODE_Z + 1:]], dim=-1)

    def query_reference_points(self, reference_points: Tensor) -> Tensor:
        """The normalised reference points ``(B, Q, 3)`` of all queries (DN first), as the
        decoder uses them; the identity, called once per forward for distillation taps."""
        return reference_points

    def _post_update_memory(self, cls_scores: Tensor, bbox_preds: Tensor, query_feats: Tensor,
                            ego_pose: Tensor, timestamp: Tensor) -> None:
        """Push the ``topk_proposals`` most confident queries ``(B, Q', ...)`` (detached)."""
        scores = cls_scores.detach().sigmoid().max(dim=-1, keepdim=True).values
        _, index = torch.topk(scores, self.topk_proposals, dim=1)
        self.memory.push(
            embedding=topk_gather(query_feats, index),
            reference_point=topk_gather(bbox_preds[..., CODE_X:CODE_Z + 1], index),
            velo=topk_gather(bbox_preds[..., CODE_VX:CODE_VY + 1], index),
            ego_pose=ego_pose,
            timestamp=timestamp,
        )

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
        for cls_scores, bbox_preds in zip(preds["all_cls_scores"], preds["all_bbox_preds"]):
            targets = assign_set_targets(self.assigner, cls_scores, bbox_preds, gt_bboxes_3d,
                                         gt_labels_3d, self.num_classes, self.match_costs,
                                         self.match_with_velo)
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
