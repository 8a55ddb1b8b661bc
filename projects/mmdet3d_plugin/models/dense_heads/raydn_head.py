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

from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ..denoising.denoising import DenoisingQueries
from ..temporal.mln import MLN
from ..denoising.ray_denoising import RayDenoising
from .sparse_query_head import SparseQueryHead

_CAMERA_DIMS = 14  # fx / 1e3, fy / 1e3 and the 12 entries of extrinsics[:3, :4]


@MODELS.register_module()
class RayDNHead(SparseQueryHead):
    """RayDN head (registered name and constructor arguments as in upstream configs).

    Args:
        transformer: Config of the :class:`Detr3DTransformer`.
        stride: Feature strides (documentation of the input).
        test_cfg: Accepted for config compatibility; must be None (decoding is the coder's).
        raydn_group, raydn_num, raydn_alpha, raydn_beta, raydn_radius: Ray denoising.
        normedlinear: Must be False.
        **shared: The :class:`.sparse_query_head.SparseQueryHead` arguments (``in_channels``
            must equal ``embed_dims``: tokens enter the decoder unprojected).
    """

    projects_image_tokens = False

    def __init__(
        self,
        *,
        stride: Sequence[int] = (16,),
        test_cfg: Optional[dict] = None,
        raydn_group: int = 1,
        raydn_num: int = 5,
        raydn_alpha: float = 8,
        raydn_beta: float = 2,
        raydn_radius: float = 3,
        normedlinear: bool = False,
        **shared: Any,
    ) -> None:
        unsupported = []
        if normedlinear:
            unsupported.append("normedlinear=True (only a plain Linear classifier)")
        if test_cfg is not None:
            unsupported.append(f"test_cfg={test_cfg} (decoding is configured by bbox_coder)")
        super().__init__(**shared, stride=list(stride), unsupported=unsupported)
        self.denoising = RayDenoising(self.num_classes, self.scalar, self.bbox_noise_scale,
                                      self.bbox_noise_trans, self.split,
                                      raydn_group, raydn_num, raydn_alpha, raydn_beta, raydn_radius)
        self.transformer.init_weights()

    def _build_spatial_alignment(self) -> nn.Module:
        """MLN of every level's tokens on the camera (``fx, fy, extrinsics[:3, :4]``)."""
        return MLN(_CAMERA_DIMS, f_dim=self.embed_dims, use_ln=False)

    def _image_inputs(self, img_feats: Sequence[Tensor], lidar2img: Tensor, intrinsics: Tensor,
                      extrinsics: Optional[Tensor], locations: Optional[Tensor],
                      topk_indexes: Optional[Tensor], pad_shape: tuple[int, int]) -> tuple:
        """``(feat_flatten, spatial_shapes, lidar2img, pad_shape)`` for :meth:`_decode`: the
        camera-aligned tokens of every level (:meth:`_image_tokens`) and what projects the
        key points into them; ``locations`` is unused."""
        if extrinsics is None:
            raise ValueError("RayDNHead.forward needs extrinsics (B, N, 4, 4): its camera MLN "
                             "reads them")
        if topk_indexes is not None:
            raise ValueError("RayDNHead keeps every image token; topk_indexes must be None")
        feat_flatten, spatial_shapes = self._image_tokens(img_feats, intrinsics, extrinsics)
        return feat_flatten, spatial_shapes, lidar2img, pad_shape

    def _dn_queries(self, boxes: list[Tensor], labels: list[Tensor], lidar2img: Tensor,
                    pad_shape: tuple[int, int]) -> DenoisingQueries:
        """Box-noise and ray DN queries of the targets (:class:`.RayDenoising`)."""
        return self.denoising(boxes, labels, self.pc_range, lidar2img, pad_shape)

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

