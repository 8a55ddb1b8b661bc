"""The 3D-query receptive field of dense-attention heads (StreamPETR), rendered in BEV.

StreamPETR's decoder cross-attends all image tokens; there are no sampling offsets. Token
``k`` is a camera ray (its frustum points from the first to the last depth bin). Query ``q``
with reference point ``r_q`` is defined to sample each of its ``num_points`` most-attended
tokens at the point of that ray closest to ``r_q``, ``a_k + t (b_k - a_k)``,
``t = clamp((r_q - a_k)·(b_k - a_k) / |b_k - a_k|^2, 0, 1)``, with value = its attention
weight ``A[q, k]``. The locations are thus the reference points moved onto the rays the query
reads, weighted by the query's attention; they are splatted, blurred and aligned as in
:mod:`.query_field`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ...registry import MODELS
from .query_field import DEFAULT_BLUR_SIGMAS, BEVFieldLoss
from .query_matching import take_last_queries


def dense_query_samples(attn: Tensor, reference_points: Tensor, token_points: Tensor,
                        num_points: int) -> tuple[Tensor, Tensor]:
    """Sampled locations of dense-attention queries (StreamPETR; see the module docstring).

    Args:
        attn: ``(B, Q, K)`` cross-attention map over image tokens.
        reference_points: ``(B, Q, 3)`` metric reference points.
        token_points: ``(B, K, D, 3)`` metric frustum points of every token's ray.
        num_points: most-attended tokens kept per query (``P``, at most ``K``).

    Returns:
        ``points (B, Q, P, 3)`` and ``values (B, Q, P)`` (the attention weights).
    """
    batch, num_query, num_tokens = attn.shape
    if reference_points.shape != (batch, num_query, 3) or token_points.dim() != 4 or \
            token_points.shape[:2] != (batch, num_tokens) or token_points.shape[-1] != 3:
        raise ValueError(f"dense_query_samples: attn {tuple(attn.shape)}, reference_points "
                         f"{tuple(reference_points.shape)} and token_points {tuple(token_points.shape)} "
                         "must be (B, Q, K), (B, Q, 3) and (B, K, D, 3)")
    values, index = attn.topk(min(num_points, num_tokens), dim=-1)
    flat = index.reshape(batch, -1, 1).expand(-1, -1, 3)
    start = torch.gather(token_points[:, :, 0], 1, flat).view(*index.shape, 3)
    ray = torch.gather(token_points[:, :, -1] - token_points[:, :, 0], 1, flat).view(*index.shape, 3)
    along = ((reference_points.unsqueeze(2) - start) * ray).sum(-1)
    t = (along / ray.pow(2).sum(-1).clamp(min=1e-12)).clamp(0.0, 1.0)
    return start + t.unsqueeze(-1) * ray, values


@MODELS.register_module()
class DenseQueryFieldLoss(BEVFieldLoss):
    """BEV receptive-field loss of dense-attention heads (StreamPETR).

    Args:
        pc_range: ``(6,)`` range of the heads' normalised reference points; the grid covers
            its ``x`` / ``y`` extent.
        position_range: ``(6,)`` range of the normalised frustum points (the head's).
        num_points: most-attended tokens sampled per query.
        bev_size, loss_type (``'density'``, ``'kl'`` or ``'mse'``), temperature, num_queries,
            region_weights, loss_weight, blur_sigmas: as in :class:`QueryFieldLoss`.
    """

    def __init__(self, pc_range: Sequence[float], position_range: Sequence[float],
                 num_points: int = 13, bev_size: Sequence[int] = (128, 128), loss_type: str = "density",
                 temperature: float = 1.0, num_queries: Optional[int] = None,
                 region_weights: Optional[dict] = None, loss_weight: float = 1.0,
                 blur_sigmas: Sequence[float] = DEFAULT_BLUR_SIGMAS) -> None:
        super().__init__(pc_range, bev_size, loss_type, temperature, blur_sigmas, num_queries,
                         region_weights, loss_weight)
        if len(position_range) != 6 or num_points <= 0:
            raise ValueError(f"DenseQueryFieldLoss needs position_range of 6 values and "
                             f"num_points > 0, got {position_range}, {num_points}")
        self.position_range = [float(v) for v in position_range]
        self.num_points = int(num_points)

    def _field(self, attn: Tensor, reference_points: Tensor, token_points: Tensor, side: str) -> Tensor:
        """BEV map of one side (normalised inputs as tapped from the head)."""
        attn = take_last_queries(attn, self.num_queries, f"{side}_attn")
        reference_points = take_last_queries(reference_points, self.num_queries, f"{side}_reference_points")
        ref_low, ref_span = _low_span(self.pc_range, reference_points)
        pos_low, pos_span = _low_span(self.position_range, token_points)
        points, values = dense_query_samples(attn, reference_points * ref_span + ref_low,
                                             token_points * pos_span + pos_low, self.num_points)
        return self.render(points, values)

    def forward(self, student_attn: Tensor, student_reference_points: Tensor,
                student_token_points: Tensor, teacher_attn: Tensor, teacher_reference_points: Tensor,
                teacher_token_points: Tensor, gt_bboxes_3d: Optional[Sequence[Tensor]] = None,
                teacher_cls: Optional[Tensor] = None, teacher_box: Optional[Tensor] = None) -> Tensor:
        """Loss between the student's and the teacher's dense BEV query fields.

        Args:
            student_attn / teacher_attn: ``(B, Q, K)`` cross-attention maps (head-averaged).
            student_reference_points / teacher_reference_points: ``(B, Q, 3)`` normalised to
                ``pc_range``.
            student_token_points / teacher_token_points: ``(B, K, D, 3)`` frustum points
                normalised to ``position_range``.
            gt_bboxes_3d, teacher_cls, teacher_box: as in :meth:`QueryFieldLoss.forward`.

        Returns:
            Weighted scalar loss.
        """
        student_map = self._field(student_attn, student_reference_points, student_token_points, "student")
        with torch.no_grad():
            teacher_map = self._field(teacher_attn.detach(), teacher_reference_points.detach(),
                                      teacher_token_points.detach(), "teacher")
        return self.align(student_map, teacher_map, gt_bboxes_3d, teacher_cls, teacher_box)


def _low_span(value_range: Sequence[float], like: Tensor) -> tuple[Tensor, Tensor]:
    """``(3,)`` lower corner and extent of a ``(6,)`` range, on ``like``'s device and dtype."""
    low = like.new_tensor(value_range[:3])
    return low, like.new_tensor(value_range[3:]) - low
