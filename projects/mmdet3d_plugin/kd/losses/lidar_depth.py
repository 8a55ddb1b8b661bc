"""LiDAR soft-depth supervision of a student feature map (LabelDistill-style), training only.

A small depth head on one student FPN level predicts, per cell, a distribution over ``D``
depth bins (:mod:`.depth_targets`); the LiDAR depth maps of the batch give its labels::

    p = softmax(head(F))                        F: (B*N, C, h, w), p: (B*N, D, h, w)
    L = w * mean_{cells i with a valid depth} ( - sum_k y_ik log p_ik )

with ``y_i`` the Gaussian (soft) or one-hot label of the cell's depth. ``L - H(y) =
KL(y || p) >= 0``: the minimum is the labels' entropy, reached when ``p = y``. A cell is
valid when its depth lies in ``[d_min, d_max]`` (0 marks "no LiDAR point").

The head (``Conv3x3(C, C_mid, no bias) - BN - ReLU - Conv1x1(C_mid, D)``) exists only to
shape the student's features: it lives in the distiller under ``distill_losses.<name>.*``,
and the student export (``kd/student_conversion.py``) drops it with the other loss modules,
so inference stays camera-only and the plain student is unchanged.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .depth_targets import (BIN_SPACINGS, LABEL_TYPES, depth_bin_edges, gaussian_labels, min_pool_depth,
                            one_hot_labels)
from .feature_utils import check_non_negative
from ...registry import MODELS


def _depth_head(in_channels: int, mid_channels: int, num_bins: int) -> nn.Sequential:
    """``Conv3x3 - BN - ReLU - Conv1x1``: ``(M, C, h, w)`` features to ``(M, D, h, w)`` logits."""
    return nn.Sequential(
        nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(mid_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid_channels, num_bins, kernel_size=1),
    )


@MODELS.register_module()
class LidarDepthLoss(nn.Module):
    """Cross-entropy between depth-bin labels from LiDAR and a depth head on a student level.

    Args:
        in_channels: channels ``C`` of the student feature map (the FPN width).
        depth_range: ``(d_min, d_max)`` metres covered by the bins; other depths are ignored.
        num_bins: ``D``.
        bin_spacing: ``'uniform'`` or ``'lid'`` (linear-increasing).
        label_type: ``'gaussian'`` (soft) or ``'one_hot'``.
        sigma: standard deviation of the Gaussian labels, metres.
        mid_channels: width of the head's hidden layer (None: ``in_channels``).
        loss_weight: factor ``w`` on the mean cross-entropy.
    """

    def __init__(self, in_channels: int, depth_range: tuple[float, float] = (1.0, 61.0), num_bins: int = 60,
                 bin_spacing: str = "uniform", label_type: str = "gaussian", sigma: float = 1.0,
                 mid_channels: Optional[int] = None, loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("num_bins", num_bins),
                           ("mid_channels", in_channels if mid_channels is None else mid_channels)):
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
        if len(depth_range) != 2 or not 0 < depth_range[0] < depth_range[1]:
            raise ValueError(f"{name}: depth_range must be (d_min, d_max) with 0 < d_min < d_max metres, "
                             f"got {depth_range!r}")
        if label_type not in LABEL_TYPES:
            raise ValueError(f"{name}: label_type must be one of {LABEL_TYPES}, got {label_type!r}")
        if bin_spacing not in BIN_SPACINGS:
            raise ValueError(f"{name}: bin_spacing must be one of {BIN_SPACINGS}, got {bin_spacing!r}")
        if not sigma > 0:
            raise ValueError(f"{name}: sigma must be positive (metres), got {sigma!r}")
        self.in_channels, self.num_bins = int(in_channels), int(num_bins)
        self.depth_range = (float(depth_range[0]), float(depth_range[1]))
        self.bin_spacing, self.label_type, self.sigma = bin_spacing, label_type, float(sigma)
        self.loss_weight = check_non_negative(loss_weight, "loss_weight", name)
        self.head = _depth_head(self.in_channels, int(mid_channels or in_channels), self.num_bins)
        edges = depth_bin_edges(self.depth_range, self.num_bins, bin_spacing)
        self.register_buffer("bin_edges", edges, persistent=False)
        self.register_buffer("bin_centres", (edges[:-1] + edges[1:]) / 2, persistent=False)

    def depth_labels(self, depth: Tensor) -> Tensor:
        """``(P, D)`` labels (rows sum to 1) of depths ``(P,)`` in ``depth_range``."""
        if self.label_type == "one_hot":
            return one_hot_labels(depth, self.bin_edges)
        return gaussian_labels(depth, self.bin_centres, self.sigma)

    def loss_from_logits(self, logits: Tensor, depth: Tensor) -> Tensor:
        """The weighted cross-entropy of head logits ``(M, D, h, w)`` against depths ``(M, h, w)``.

        The mean runs over the valid cells; with none the result is ``0 * sum(cross-entropy)``,
        a zero that keeps the head in the graph (DDP needs a gradient for every parameter).
        """
        valid = ((depth >= self.depth_range[0]) & (depth <= self.depth_range[1])).reshape(-1)
        log_probs = logits.float().log_softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, self.num_bins)
        labels = self.depth_labels(depth.float().clamp(*self.depth_range).reshape(-1))
        cross_entropy = -(labels * log_probs).sum(dim=-1)  # (M*h*w,)
        mean = (cross_entropy * valid).sum() / valid.sum().clamp(min=1)
        return self.loss_weight * mean

    def forward(self, student: Tensor, depth_maps: Tensor) -> Tensor:
        """Weighted depth cross-entropy of one student level.

        Args:
            student: ``(B*N, C, h, w)`` a student FPN level (a tap).
            depth_maps: ``(B, N, h', w')`` LiDAR depth per cell (``batch.depth_maps``, 0: none);
                min-pooled (or nearest-resampled) to ``(h, w)`` when the strides differ.

        Returns:
            Scalar loss, already multiplied by ``loss_weight``.
        """
        self._check_inputs(student, depth_maps)
        depth = depth_maps.reshape(-1, *depth_maps.shape[-2:]).to(student.device, torch.float32)
        depth = min_pool_depth(depth, tuple(student.shape[-2:]))
        return self.loss_from_logits(self.head(student), depth)

    @torch.no_grad()
    def predict_depth(self, student: Tensor) -> Tensor:
        """``(B*N, h, w)`` expected depth ``sum_k p_k c_k`` (metres) of the head, for pictures
        (call it in eval mode: in train mode the head's BatchNorm updates its statistics)."""
        probs = self.head(student).float().softmax(dim=1)
        return torch.einsum("mdhw,d->mhw", probs, self.bin_centres)

    def _check_inputs(self, student: Tensor, depth_maps: Tensor) -> None:
        name = type(self).__name__
        if student.dim() != 4 or student.shape[1] != self.in_channels:
            raise ValueError(f"{name}: student must be a feature map (B*N, C={self.in_channels}, h, w) "
                             f"(in_channels of the config), got {tuple(student.shape)}")
        if depth_maps.dim() != 4:
            raise ValueError(f"{name}: depth_maps must be (B, N, h, w) ('batch.depth_maps' of "
                             f"LoadLidarDepthMaps), got {tuple(depth_maps.shape)}")
        if depth_maps.shape[0] * depth_maps.shape[1] != student.shape[0]:
            raise ValueError(f"{name}: depth_maps {tuple(depth_maps.shape)} hold B*N = "
                             f"{depth_maps.shape[0] * depth_maps.shape[1]} camera images but the student "
                             f"{tuple(student.shape)} holds {student.shape[0]}; both must come from one batch")

    def extra_repr(self) -> str:
        """Constructor arguments, shown by ``print(module)``."""
        return (f"in_channels={self.in_channels}, depth_range={self.depth_range}, num_bins={self.num_bins}, "
                f"bin_spacing={self.bin_spacing!r}, label_type={self.label_type!r}, sigma={self.sigma}, "
                f"loss_weight={self.loss_weight}")
