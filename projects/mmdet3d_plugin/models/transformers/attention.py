"""Multi-head attention for the query decoders, on ``scaled_dot_product_attention``.

:class:`MultiheadSDPA` is a drop-in for ``nn.MultiheadAttention`` (same parameter names:
``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``; same mask
conventions) computed with :func:`torch.nn.functional.scaled_dot_product_attention`, which
runs on CPU and dispatches to fused kernels on GPU. It can also return the head-averaged
attention map, which distillation losses use.

The mmcv-style wrappers (``MultiheadAttention``, ``PETRMultiheadAttention``,
``PETRMultiheadFlashAttention``) add positional encodings, the residual and output dropout,
and hold the core module as ``attn`` so that published keys such as
``attentions.0.attn.in_proj_weight`` load unchanged.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ffn import build_dropout
from ...registry import MODELS


@functools.lru_cache(maxsize=1)
def _flash_attn_func() -> Optional[Callable[..., Tensor]]:
    """``flash_attn.flash_attn_func`` when the optional package is installed, else None."""
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        return None
    return flash_attn_func


def _attention_bias(
    attn_mask: Optional[Tensor],
    key_padding_mask: Optional[Tensor],
    batch: int,
    num_heads: int,
    dtype: torch.dtype,
) -> Optional[Tensor]:
    """Merge ``nn.MultiheadAttention``-style masks into one additive float bias.

    Args:
        attn_mask: ``(Lq, Lk)`` or ``(B * num_heads, Lq, Lk)``; bool True = not allowed,
            float values are added to the logits.
        key_padding_mask: ``(B, Lk)``; bool True = ignore this key, float values are added.

    Returns:
        None, or a bias broadcastable to ``(B, num_heads, Lq, Lk)``.
    """
    bias = None
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn_mask = torch.zeros_like(attn_mask, dtype=dtype).masked_fill(attn_mask, -math.inf)
        attn_mask = attn_mask.to(dtype)
        if attn_mask.dim() == 3:
            bias = attn_mask.reshape(batch, num_heads, *attn_mask.shape[-2:])
        else:
            bias = attn_mask.reshape(1, 1, *attn_mask.shape[-2:])
    if key_padding_mask is not None:
        if key_padding_mask.dtype == torch.bool:
            key_padding_mask = torch.zeros_like(key_padding_mask, dtype=dtype).masked_fill(
                key_padding_mask, -math.inf
            )
        padding = key_padding_mask.to(dtype).reshape(batch, 1, 1, -1)
        bias = padding if bias is None else bias + padding
    return bias


class MultiheadSDPA(nn.Module):
    """``nn.MultiheadAttention`` (batch-first) computed with scaled dot-product attention.

    Args:
        embed_dims: channels ``C`` of query, key and value.
        num_heads: number of heads; must divide ``embed_dims``.
        attn_drop: dropout on the attention weights (training only).
        use_flash: call ``flash_attn`` when installed and the inputs are CUDA fp16/bf16
            without masks.
    """

    def __init__(
        self, embed_dims: int, num_heads: int, attn_drop: float = 0.0, use_flash: bool = False
    ) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f"embed_dims={embed_dims} is not divisible by num_heads={num_heads}")
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop = attn_drop
        self.use_flash = use_flash
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dims, embed_dims))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dims))
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as ``nn.MultiheadAttention``: xavier in-projection, zero biases."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        """``(B, L, C)`` -> ``(B, num_heads, L, head_dims)``."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dims).transpose(1, 2)

    def _can_use_flash(self, query: Tensor, bias: Optional[Tensor], need_weights: bool) -> bool:
        """Whether the optional flash_attn kernel applies to this call."""
        return (
            self.use_flash
            and bias is None
            and not need_weights
            and query.is_cuda
            and query.dtype in (torch.float16, torch.bfloat16)
            and _flash_attn_func() is not None
        )

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Optional[Tensor] = None,
        key_padding_mask: Optional[Tensor] = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Attend ``query (B, Lq, C)`` to ``key (B, Lk, C)`` / ``value (B, Lk, C)``.

        Args:
            attn_mask: ``(Lq, Lk)`` or ``(B * num_heads, Lq, Lk)``; bool True = not allowed.
            key_padding_mask: ``(B, Lk)``; bool True = ignore that key.
            need_weights: also return the attention map.

        Returns:
            ``(out (B, Lq, C), weights)``; ``weights`` is the head-averaged attention map
            ``(B, Lq, Lk)`` before attention dropout, or None unless ``need_weights``.
        """
        batch, len_q, _ = query.shape
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = self._split_heads(F.linear(query, w_q, b_q))
        k = self._split_heads(F.linear(key, w_k, b_k))
        v = self._split_heads(F.linear(value, w_v, b_v))
        bias = _attention_bias(attn_mask, key_padding_mask, batch, self.num_heads, q.dtype)
        dropout_p = self.attn_drop if self.training else 0.0
        weights = None
        if self._can_use_flash(query, bias, need_weights):
            flash = _flash_attn_func()
            out = flash(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p)
            out = out.reshape(batch, len_q, self.embed_dims)
        elif need_weights:
            logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dims)
            probs = (logits if bias is None else logits + bias).softmax(dim=-1)
            weights = probs.mean(dim=1)
            out = F.dropout(probs, p=dropout_p) @ v
            out = out.transpose(1, 2).reshape(batch, len_q, self.embed_dims)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
            out = out.transpose(1, 2).reshape(batch, len_q, self.embed_dims)
        return self.out_proj(out), weights


class _PETRAttentionBase(nn.Module):
    """mmcv ``MultiheadAttention`` semantics around :class:`MultiheadSDPA`.

    Args:
        embed_dims: channels ``C``.
        num_heads: number of heads.
        attn_drop: dropout on attention weights.
        proj_drop: dropout on the attention output.
        dropout_layer: ``dict(type='Dropout', drop_prob=p)`` applied before the residual.
        batch_first: inputs are ``(B, L, C)`` when True, ``(L, B, C)`` when False.
        dropout: deprecated mmcv alias (StreamPETR configs use it): sets ``attn_drop`` and
            the ``dropout_layer`` probability.

    Set ``need_weights = True`` on an instance to make ``attn`` also return the
    head-averaged map, so a forward hook on ``<module>.attn`` receives ``(out, map)``.
    """

    use_flash = False
    applies_attn_drop = True

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        dropout_layer: Optional[dict] = None,
        batch_first: bool = False,
        dropout: Optional[float] = None,
    ) -> None:
        super().__init__()
        if dropout is not None:
            attn_drop = dropout
            dropout_layer = dict(type="Dropout", drop_prob=dropout)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.batch_first = batch_first
        self.need_weights = False
        attn_drop = attn_drop if self.applies_attn_drop else 0.0
        self.attn = MultiheadSDPA(embed_dims, num_heads, attn_drop, use_flash=self.use_flash)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dropout_layer = build_dropout(dropout_layer)

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor] = None,
        value: Optional[Tensor] = None,
        identity: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
        key_pos: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        key_padding_mask: Optional[Tensor] = None,
    ) -> Tensor:
        """Attention with positional encodings and residual (mmcv semantics).

        Args:
            query: ``(Lq, B, C)``, or ``(B, Lq, C)`` when ``batch_first``.
            key: ``(Lk, B, C)`` / ``(B, Lk, C)``; defaults to ``query``.
            value: same shape as ``key``; defaults to ``key`` (before ``key_pos`` is added).
            identity: residual, same shape as ``query``; defaults to ``query``.
            query_pos: added to ``query``.
            key_pos: added to ``key``; defaults to ``query_pos`` when shapes match.
            attn_mask: ``(Lq, Lk)`` or ``(B * num_heads, Lq, Lk)``; bool True = not allowed.
            key_padding_mask: ``(B, Lk)``; bool True = ignore that key.

        Returns:
            ``identity + dropout_layer(proj_drop(attention))``, shaped like ``query``.
        """
        out, _ = self._attend(
            query, key, value, identity, query_pos, key_pos, attn_mask, key_padding_mask,
            self.need_weights,
        )
        return out

    def forward_with_attn_map(
        self,
        query: Tensor,
        key: Optional[Tensor] = None,
        value: Optional[Tensor] = None,
        identity: Optional[Tensor] = None,
        query_pos: Optional[Tensor] = None,
        key_pos: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        key_padding_mask: Optional[Tensor] = None,
    ) -> tuple[Tensor, Tensor]:
        """As :meth:`forward`, also returning the head-averaged attention map.

        Returns:
            ``(out, attn_map)``: ``out`` as in :meth:`forward`; ``attn_map`` ``(B, Lq, Lk)``
            (batch first in both layouts), softmax weights before attention dropout,
            averaged over heads.
        """
        return self._attend(
            query, key, value, identity, query_pos, key_pos, attn_mask, key_padding_mask, True
        )

    def _attend(
        self,
        query: Tensor,
        key: Optional[Tensor],
        value: Optional[Tensor],
        identity: Optional[Tensor],
        query_pos: Optional[Tensor],
        key_pos: Optional[Tensor],
        attn_mask: Optional[Tensor],
        key_padding_mask: Optional[Tensor],
        need_weights: bool,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Shared body of :meth:`forward` and :meth:`forward_with_attn_map`."""
        key = query if key is None else key
        value = key if value is None else value
        identity = query if identity is None else identity
        if key_pos is None and query_pos is not None:
            if query_pos.shape == key.shape:
                key_pos = query_pos
            else:
                warnings.warn(f"position encoding of key is missing in {type(self).__name__}.")
        if query_pos is not None:
            query = query + query_pos
        if key_pos is not None:
            key = key + key_pos
        if not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out, weights = self.attn(query, key, value, attn_mask, key_padding_mask, need_weights)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return identity + self.dropout_layer(self.proj_drop(out)), weights


@MODELS.register_module()
class MultiheadAttention(_PETRAttentionBase):
    """mmcv ``MultiheadAttention`` (configs' ``type='MultiheadAttention'``), on SDPA."""


@MODELS.register_module()
class PETRMultiheadAttention(_PETRAttentionBase):
    """StreamPETR's ``PETRMultiheadAttention``, on SDPA."""


@MODELS.register_module()
class PETRMultiheadFlashAttention(_PETRAttentionBase):
    """StreamPETR's flash cross-attention.

    Uses the ``flash_attn`` package when it is installed and the inputs are CUDA
    fp16/bf16 without masks; otherwise SDPA (which picks fused kernels by itself). Unlike
    upstream, masks are honoured and the layout follows ``batch_first`` (default False,
    ``(L, B, C)``, which is what StreamPETR's decoder feeds it).

    Upstream passes ``attn_drop`` into ``FlashMHA``'s ``bias`` slot, so its attention
    weights are never dropped out; published checkpoints were trained that way, and here
    too ``attn_drop`` (and the ``dropout`` alias' share of it) is not applied to the weights.
    The output dropout (``dropout_layer``) is.
    """

    use_flash = True
    applies_attn_drop = False
