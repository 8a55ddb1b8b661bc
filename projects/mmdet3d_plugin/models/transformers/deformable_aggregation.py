"""Deformable feature aggregation (DFA), the cross-attention of RayDN (Sparse4D style).

Each query owns ``num_pts`` learnable 3D key points (offsets in metres around its reference
point). Every key point is projected into every camera with ``lidar2img``; each feature level
is sampled bilinearly at the projected points (one ``grid_sample`` per level over all
cameras, queries and points at once); the samples are weighted by a softmax, per channel
group, over cameras × levels × points, summed over cameras and projected back to
``embed_dims``.

The weights are predicted **per camera** from ``query + query_pos + cam_embed(lidar2img)``.
Points behind a camera get weight 0; points outside the image read zeros (``grid_sample``
zero padding, ``align_corners=False`` like mmcv's multi-scale deformable attention).

Parameter names follow the published RayDN checkpoints (``learnable_fc``, ``weights_fc``,
``output_proj``, ``cam_embed.{0,2,4}``). The op is pure PyTorch, runs on CPU and exports to
ONNX (no loop over queries, cameras or points; one loop over the few feature levels).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS

# Smallest camera depth (metres) at which a projected point counts as in front of a camera.
DEPTH_EPS = 1e-5
# Normalised grid_sample coordinates are clamped to this magnitude: far enough outside
# [-1, 1] to read only zero padding, small enough to stay finite for points near depth 0.
GRID_LIMIT = 2.0


def project_points(
    points: Tensor, lidar2img: Tensor, image_size: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Project 3D points into every camera.

    Args:
        points: ``(B, Q, P, 3)`` points in the LiDAR frame.
        lidar2img: ``(B, N, 4, 4)`` LiDAR → homogeneous pixel matrices.
        image_size: ``(H, W)`` of the (padded) image the pixels refer to.

    Returns:
        ``uv`` ``(B, N, Q, P, 2)`` pixel coordinates divided by ``(W, H)`` (inside the image
        in ``[0, 1]``), and ``in_front`` ``(B, N, Q, P)`` bool, True where the camera depth
        exceeds :data:`DEPTH_EPS`.
    """
    batch, num_query, num_pts, _ = points.shape
    homo = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    homo = homo.reshape(batch, 1, num_query * num_pts, 4)
    cam = torch.matmul(homo, lidar2img.transpose(-1, -2))
    depth = cam[..., 2:3]
    in_front = depth[..., 0] > DEPTH_EPS
    uv = cam[..., :2] / depth.clamp(min=DEPTH_EPS)
    height, width = image_size
    # Python scalars, not a tensor built from them: no host-to-device copy (CUDA-graph capturable).
    uv = torch.stack([uv[..., 0] / float(width), uv[..., 1] / float(height)], dim=-1)
    num_cams = lidar2img.shape[1]
    return (
        uv.reshape(batch, num_cams, num_query, num_pts, 2),
        in_front.reshape(batch, num_cams, num_query, num_pts),
    )


def aggregate_features(
    feat_flatten: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    uv: Tensor,
    weights: Tensor,
) -> Tensor:
    """Weighted bilinear sampling of all levels, summed over levels, points and cameras.

    Args:
        feat_flatten: ``(B*N, sum(H_l*W_l), C)`` image tokens, level after level, each level
            flattened row-major from ``(H_l, W_l)``.
        spatial_shapes: ``L`` pairs ``(H_l, W_l)`` (Python ints).
        uv: ``(B, N, Q, P, 2)`` normalised sampling locations (see :func:`project_points`).
        weights: ``(B, N, L, G, Q, P)`` weights; channel group ``g`` holds channels
            ``[g*C/G, (g+1)*C/G)``.

    Returns:
        ``(B, Q, C)`` aggregated features.
    """
    batch, num_cams, num_query, num_pts, _ = uv.shape
    num_groups = weights.shape[3]
    bn, _, channels = feat_flatten.shape
    grid = (uv * 2.0 - 1.0).clamp(-GRID_LIMIT, GRID_LIMIT).reshape(bn, num_query, num_pts, 2)
    weights = weights.reshape(bn, len(spatial_shapes), num_groups, 1, num_query, num_pts)
    level_sizes = [int(h) * int(w) for h, w in spatial_shapes]
    levels = torch.split(feat_flatten, level_sizes, dim=1)
    output = feat_flatten.new_zeros(bn, num_groups, channels // num_groups, num_query)
    for level, (tokens, (height, width)) in enumerate(zip(levels, spatial_shapes)):
        value = tokens.transpose(1, 2).reshape(bn, channels, int(height), int(width))
        sampled = F.grid_sample(
            value, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        sampled = sampled.reshape(bn, num_groups, channels // num_groups, num_query, num_pts)
        output = output + (sampled * weights[:, level]).sum(dim=-1)
    output = output.reshape(batch, num_cams, channels, num_query).sum(dim=1)
    return output.transpose(1, 2)


@MODELS.register_module()
@MODELS.register_module(name="DeformableFeatureAggregationCuda")
class DeformableFeatureAggregation(nn.Module):
    """RayDN's deformable feature aggregation (cross-attention over all cameras and levels).

    Registered also as ``DeformableFeatureAggregationCuda``, the name RayDN configs use; this
    implementation is pure PyTorch on every device.

    Args:
        embed_dims: Query / feature channels ``C``.
        num_groups: Channel groups ``G`` with their own weights (``C % G == 0``).
        num_levels: Feature levels ``L``.
        num_cams: Cameras ``N``.
        dropout: Dropout on the projected output before the residual.
        num_pts: Learnable key points ``P`` per query.
        im2col_step: Accepted for config compatibility with the CUDA op; must be positive.
        batch_first: Must be True (queries are ``(B, Q, C)``).
        bias: Learnable offsets' bias is initialised uniform in ``[-bias, bias]`` metres.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        num_groups: int = 8,
        num_levels: int = 4,
        num_cams: int = 6,
        dropout: float = 0.1,
        num_pts: int = 13,
        im2col_step: int = 64,
        batch_first: bool = True,
        bias: float = 1.0,
    ) -> None:
        super().__init__()
        if embed_dims % num_groups != 0:
            raise ValueError(
                f"embed_dims ({embed_dims}) must be divisible by num_groups ({num_groups})"
            )
        if not batch_first:
            raise ValueError("DeformableFeatureAggregation supports only batch_first=True")
        if im2col_step <= 0:
            raise ValueError(f"im2col_step must be positive, got {im2col_step}")
        self.embed_dims = embed_dims
        self.num_groups = num_groups
        self.num_levels = num_levels
        self.num_cams = num_cams
        self.num_pts = num_pts
        self.bias = bias
        self.batch_first = batch_first
        self.weights_fc = nn.Linear(embed_dims, num_groups * num_levels * num_pts)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.learnable_fc = nn.Linear(embed_dims, num_pts * 3)
        self.cam_embed = nn.Sequential(
            nn.Linear(12, embed_dims // 2),
            nn.ReLU(inplace=True),
            nn.Linear(embed_dims // 2, embed_dims),
            nn.ReLU(inplace=True),
            nn.LayerNorm(embed_dims),
        )
        self.drop = nn.Dropout(dropout)

    def init_weights(self) -> None:
        """Zero weight logits, Xavier output projection, offsets' bias uniform in ±bias."""
        nn.init.zeros_(self.weights_fc.weight)
        nn.init.zeros_(self.weights_fc.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)
        nn.init.uniform_(self.learnable_fc.bias, -self.bias, self.bias)

    def key_points(self, query: Tensor, reference_points: Tensor, pc_range: Tensor) -> Tensor:
        """Learnable key points of every query in metres.

        Args:
            query: ``(B, Q, C)`` query features.
            reference_points: ``(B, Q, 3)`` reference points normalised to ``pc_range``.
            pc_range: ``(6,)`` ``[x_min, y_min, z_min, x_max, y_max, z_max]``.

        Returns:
            ``(B, Q, P, 3)`` points in the LiDAR frame.
        """
        batch, num_query, _ = query.shape
        centres = reference_points * (pc_range[3:6] - pc_range[0:3]) + pc_range[0:3]
        offsets = self.learnable_fc(query).reshape(batch, num_query, self.num_pts, 3)
        return centres.unsqueeze(-2) + offsets

    def point_weights(self, query: Tensor, query_pos: Tensor, lidar2img: Tensor) -> Tensor:
        """Softmax weights per group over cameras × levels × points.

        Args:
            query: ``(B, Q, C)``; query_pos: ``(B, Q, C)``; lidar2img: ``(B, N, 4, 4)``.

        Returns:
            ``(B, N, L, G, Q, P)`` weights; for each ``(b, g, q)`` they sum to 1.
        """
        batch, num_query, _ = query.shape
        num_cams = lidar2img.shape[1]
        cam_embed = self.cam_embed(lidar2img[..., :3, :].flatten(-2))
        feat = (query + query_pos).unsqueeze(2) + cam_embed.unsqueeze(1)
        logits = self.weights_fc(feat).reshape(batch, num_query, -1, self.num_groups)
        weights = logits.softmax(dim=-2).reshape(
            batch, num_query, num_cams, self.num_levels, self.num_pts, self.num_groups
        )
        return weights.permute(0, 2, 3, 5, 1, 4)

    def aggregation_weights(self, query: Tensor, query_pos: Tensor, lidar2img: Tensor,
                            in_front: Tensor) -> Tensor:
        """The weights the features are aggregated with: :meth:`point_weights` set to 0 for
        points behind a camera. Called once per forward (distillation taps record it).

        Args:
            query: ``(B, Q, C)``; query_pos: ``(B, Q, C)``; lidar2img: ``(B, N, 4, 4)``.
            in_front: ``(B, N, Q, P)`` bool from :func:`project_points`.

        Returns:
            ``(B, N, L, G, Q, P)`` weights.
        """
        weights = self.point_weights(query, query_pos, lidar2img)
        return weights * in_front[:, :, None, None].to(weights.dtype)

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor,
        feat_flatten: Tensor,
        reference_points: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        pc_range: Tensor,
        lidar2img: Tensor,
        image_size: Sequence[int],
    ) -> Tensor:
        """Aggregate image features at each query's key points.

        Args:
            query: ``(B, Q, C)`` query features (also the residual).
            query_pos: ``(B, Q, C)`` query positional embedding.
            feat_flatten: ``(B*N, sum(H_l*W_l), C)`` multi-level image tokens.
            reference_points: ``(B, Q, 3)`` normalised to ``pc_range``.
            spatial_shapes: ``L`` pairs ``(H_l, W_l)``.
            pc_range: ``(6,)`` point-cloud range.
            lidar2img: ``(B, N, 4, 4)``.
            image_size: ``(H, W)`` of the padded input image.

        Returns:
            ``(B, Q, C)`` updated queries.
        """
        self._check_inputs(lidar2img, spatial_shapes)
        points = self.key_points(query, reference_points, pc_range)
        uv, in_front = project_points(points, lidar2img, image_size)
        weights = self.aggregation_weights(query, query_pos, lidar2img, in_front)
        features = aggregate_features(feat_flatten, spatial_shapes, uv, weights)
        return self.drop(self.output_proj(features)) + query

    def _check_inputs(self, lidar2img: Tensor, spatial_shapes: Sequence[tuple[int, int]]) -> None:
        """Raise if the number of cameras or levels differs from the configured one."""
        if lidar2img.shape[1] != self.num_cams:
            raise ValueError(
                f"DeformableFeatureAggregation was built with num_cams={self.num_cams} but "
                f"lidar2img has {lidar2img.shape[1]} cameras"
            )
        if len(spatial_shapes) != self.num_levels:
            raise ValueError(
                f"DeformableFeatureAggregation was built with num_levels={self.num_levels} "
                f"but got {len(spatial_shapes)} feature levels"
            )
