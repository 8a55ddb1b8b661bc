"""Foreground / background weight masks of camera feature maps from the 3D ground truth.

For every camera image the 3D GT boxes are projected with ``lidar2img`` and each box's 2D
extent is the bounding rectangle of the projection of its visible part: the corners in front
of the camera plus the points where the box's twelve edges cross the near plane
``depth = min_depth`` (for a convex box this is exactly the projection of the part with
``depth >= min_depth``), clipped to the padded image ``[0, W] x [0, H]``. Boxes with no
visible part inside the image are dropped.

The rectangle is scaled to the feature map (``h / H``, ``w / W``) and covers the feature
cells it overlaps with positive area (cell ``j`` spans ``[j, j + 1)``). Following FGD,

* a foreground cell weighs ``1 / (number of cells of the box)``, the largest such weight
  where boxes overlap (small objects are not drowned by large ones);
* a background cell weighs ``1 / (number of background cells of that image)``.

So each box's cells sum to 1, and each image's background sums to 1 (or 0 if none).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ...core.bbox.box_layout import BOX_DIM, YAW
from ...core.bbox.box_ops import box3d_corners

# The twelve edges of a box, as pairs of indices into ``box3d_corners``' order.
_BOX_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 0),
    (4, 5), (5, 6), (6, 7), (7, 4),
    (0, 4), (1, 5), (2, 6), (3, 7),
)


def _visible_outline(homog: Tensor, min_depth: float) -> tuple[Tensor, Tensor]:
    """Image points outlining the part of each box in front of the near plane.

    Args:
        homog: ``(N, M, 8, 4)`` corners multiplied by ``lidar2img``: ``(u*d, v*d, d, 1)``.
        min_depth: near-plane depth.

    Returns:
        ``(N, M, 20, 2)`` pixel points (8 corners then 12 edge crossings) and
        ``(N, M, 20)`` bool: which of them are real (corner in front / edge crossing).
    """
    edges = torch.tensor(_BOX_EDGES, device=homog.device)
    start, end = homog[..., edges[:, 0], :], homog[..., edges[:, 1], :]
    depth_start, depth_end = start[..., 2], end[..., 2]
    crosses = (depth_start > min_depth) != (depth_end > min_depth)
    denom = torch.where(crosses, depth_start - depth_end, torch.ones_like(depth_start))
    frac = torch.where(crosses, (depth_start - min_depth) / denom, torch.zeros_like(depth_start))
    crossings = start + frac[..., None] * (end - start)
    points = torch.cat((homog, crossings), dim=-2)
    valid = torch.cat((homog[..., 2] > min_depth, crosses), dim=-1)
    pixels = points[..., :2] / points[..., 2:3].clamp(min=min_depth)
    return pixels, valid


def project_boxes_to_images(
    boxes: Tensor, lidar2img: Tensor, image_size: tuple[int, int], min_depth: float = 1e-2
) -> tuple[Tensor, Tensor]:
    """2D rectangles of 3D boxes in each camera image, clipped to the image.

    Args:
        boxes: ``(M, 9)`` box layout (``(M, 7)`` accepted), LiDAR frame.
        lidar2img: ``(N, 4, 4)`` LiDAR -> homogeneous pixels of the N cameras.
        image_size: ``(H, W)`` of the (padded) images.
        min_depth: near-plane depth in metres; parts of a box closer than it are ignored.

    Returns:
        ``(N, M, 4)`` rectangles ``(x1, y1, x2, y2)`` in pixels, and ``(N, M)`` bool: the
        box has a non-empty visible part inside that image (rectangles of the others are
        meaningless).
    """
    if boxes.dim() != 2 or boxes.shape[-1] not in (BOX_DIM, YAW + 1):
        raise ValueError(f"project_boxes_to_images: boxes must be (M, {BOX_DIM}), got {tuple(boxes.shape)}")
    if lidar2img.dim() != 3 or lidar2img.shape[-2:] != (4, 4):
        raise ValueError(
            f"project_boxes_to_images: lidar2img must be (N, 4, 4), got {tuple(lidar2img.shape)}"
        )
    corners = box3d_corners(boxes.to(lidar2img.dtype))
    corners = torch.cat((corners, torch.ones_like(corners[..., :1])), dim=-1)
    homog = torch.einsum("nij,mkj->nmki", lidar2img, corners)
    pixels, valid = _visible_outline(homog, min_depth)
    inf = torch.full_like(pixels, float("inf"))
    low = torch.where(valid[..., None], pixels, inf).amin(dim=-2)
    high = torch.where(valid[..., None], pixels, -inf).amax(dim=-2)
    height, width = image_size
    limit = pixels.new_tensor([width, height])
    low = torch.minimum(torch.maximum(low, torch.zeros_like(limit)), limit)
    high = torch.minimum(torch.maximum(high, torch.zeros_like(limit)), limit)
    visible = valid.any(dim=-1) & (high > low).all(dim=-1)
    return torch.cat((low, high), dim=-1), visible


def box_cell_weights(
    rects: Tensor, visible: Tensor, image_size: tuple[int, int], feat_size: tuple[int, int]
) -> Tensor:
    """Foreground weights of feature cells covered by 2D rectangles.

    Args:
        rects: ``(N, M, 4)`` rectangles ``(x1, y1, x2, y2)`` in image pixels.
        visible: ``(N, M)`` bool, rectangles to use.
        image_size: ``(H, W)`` of the image the rectangles live in.
        feat_size: ``(h, w)`` of the feature map.

    Returns:
        ``(N, h, w)``: per cell, the largest ``1 / (cells of the box)`` over the boxes
        covering it, 0 where no box does.
    """
    (height, width), (feat_h, feat_w) = image_size, feat_size
    scale = rects.new_tensor([feat_w / width, feat_h / height] * 2)
    cells = rects * scale
    col_lo, row_lo = cells[..., 0].floor(), cells[..., 1].floor()
    col_hi, row_hi = cells[..., 2].ceil(), cells[..., 3].ceil()
    area = ((col_hi - col_lo) * (row_hi - row_lo)).clamp(min=1)
    cols = torch.arange(feat_w, device=rects.device, dtype=rects.dtype)
    rows = torch.arange(feat_h, device=rects.device, dtype=rects.dtype)
    in_cols = (cols >= col_lo[..., None]) & (cols < col_hi[..., None])
    in_rows = (rows >= row_lo[..., None]) & (rows < row_hi[..., None])
    inside = in_rows[..., :, None] & in_cols[..., None, :] & visible[..., None, None]
    weights = inside.to(rects.dtype) / area[..., None, None]
    if weights.shape[1] == 0:
        return weights.new_zeros((rects.shape[0], feat_h, feat_w))
    return weights.amax(dim=1)


def background_weights(foreground: Tensor) -> Tensor:
    """``(N, h, w)`` background weights: ``1 / #bg cells`` where ``foreground == 0``, else 0."""
    background = (foreground == 0).to(foreground.dtype)
    count = background.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
    return background / count


def foreground_background_masks(
    gt_bboxes_3d: Sequence[Tensor],
    lidar2img: Tensor,
    pad_shape: Sequence[Sequence[int]],
    feat_size: tuple[int, int],
    min_depth: float = 1e-2,
) -> tuple[Tensor, Tensor]:
    """FGD's foreground and background masks of camera feature maps.

    Args:
        gt_bboxes_3d: B tensors ``(M_b, 9)``, box layout in the LiDAR frame.
        lidar2img: ``(B, N, 4, 4)``.
        pad_shape: B pairs ``(H, W)``, the padded image size of each sample.
        feat_size: ``(h, w)`` of the feature map.
        min_depth: near-plane depth of the projection.

    Returns:
        ``(B * N, h, w)`` foreground and ``(B * N, h, w)`` background weights, cameras
        folded into the batch in the same order as the feature maps (sample-major).
    """
    if lidar2img.dim() != 4 or lidar2img.shape[-2:] != (4, 4):
        raise ValueError(
            f"foreground_background_masks: lidar2img must be (B, N, 4, 4), got {tuple(lidar2img.shape)}"
        )
    batch = lidar2img.shape[0]
    if len(gt_bboxes_3d) != batch or len(pad_shape) != batch:
        raise ValueError(
            f"foreground_background_masks: lidar2img {tuple(lidar2img.shape)} has B={batch} samples, "
            f"but gt_bboxes_3d has {len(gt_bboxes_3d)} and pad_shape {len(pad_shape)}"
        )
    foreground = []
    for boxes, cams, shape in zip(gt_bboxes_3d, lidar2img, pad_shape):
        image_size = (int(shape[0]), int(shape[1]))
        rects, visible = project_boxes_to_images(boxes.to(cams.device), cams, image_size, min_depth)
        foreground.append(box_cell_weights(rects, visible, image_size, feat_size))
    foreground = torch.cat(foreground, dim=0)
    return foreground, background_weights(foreground)
