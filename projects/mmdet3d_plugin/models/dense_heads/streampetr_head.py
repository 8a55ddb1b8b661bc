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

from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ..denoising.denoising import DenoisingQueries, build_dn_queries, dn_self_attention_mask
from ..utils.misc import inverse_sigmoid, topk_gather
from ..temporal.mln import MLN, SELayer_Linear
from .petr_position import camera_focal_tokens, frustum_depth_bins, frustum_points
from .sparse_query_head import SparseQueryHead

_CONE_BIN_FROM_END = 30  # upstream takes coords3d[..., -90:-87]: bin D - 30 of the frustum


@MODELS.register_module()
class StreamPETRHead(SparseQueryHead):
    """StreamPETR head (registered name and constructor arguments as in upstream configs).

    Args:
        transformer: Config of the :class:`PETRTemporalTransformer`.
        depth_num, LID, depth_start, position_range: Frustum depth bins and normalisation.
        with_position: Must be True (3D position embedding).
        **shared: The :class:`.sparse_query_head.SparseQueryHead` arguments.
    """

    def __init__(
        self,
        *,
        depth_num: int = 64,
        LID: bool = False,  # noqa: N803 - upstream config key
        depth_start: float = 1.0,
        position_range: Sequence[float] = (-65.0, -65.0, -8.0, 65.0, 65.0, 8.0),
        with_position: bool = True,
        **shared: Any,
    ) -> None:
        unsupported = []
        if not with_position:
            unsupported.append("with_position=False (the 3D position embedding is always used)")
        if depth_num <= _CONE_BIN_FROM_END:
            unsupported.append(f"depth_num={depth_num} (must exceed {_CONE_BIN_FROM_END}: the "
                               "spatial alignment reads depth bin depth_num - 30)")
        constants = dict(position_range=torch.tensor(position_range, dtype=torch.float32),
                         coords_d=frustum_depth_bins(depth_num, depth_start, float(position_range[3]), LID))
        super().__init__(**shared, paper_constants=constants, unsupported=unsupported)

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
    def _image_inputs(self, img_feats: Tensor, lidar2img: Tensor, intrinsics: Tensor,
                      extrinsics: Optional[Tensor], locations: Optional[Tensor],
                      topk_indexes: Optional[Tensor], pad_shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Image tokens and their 3D PE (:meth:`_image_tokens`); ``extrinsics`` is unused."""
        if locations is None:
            raise ValueError("StreamPETRHead.forward needs locations (B * N, H, W, 2): the token "
                             "centres its frustum points start from")
        return self._image_tokens(img_feats, locations, lidar2img, intrinsics, pad_shape, topk_indexes)

    def _dn_queries(self, boxes: list[Tensor], labels: list[Tensor], lidar2img: Tensor,
                    pad_shape: tuple[int, int]) -> DenoisingQueries:
        """StreamPETR's box-noise DN groups around the targets."""
        return build_dn_queries(boxes, labels, self.pc_range, self.num_classes, self.scalar,
                                self.bbox_noise_scale, self.bbox_noise_trans, self.split)

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

