"""RayDN's sparse temporal decoder: ``Detr3DTransformer`` → decoder → decoder layers.

Each ``Detr3DTemporalDecoderLayer`` runs its ``operation_order`` (RayDN: self-attention →
norm → deformable feature aggregation → norm → FFN → norm). Self-attention keys and values
are the queries followed by the temporal memory (``temp_memory`` / ``temp_pos``); the
cross-attention samples the image tokens around fixed reference points (they are not refined
between layers).

Parameter names follow mmcv's ``BaseTransformerLayer`` so published RayDN checkpoints load:
``decoder.layers.{i}.attentions.{0,1}``, ``ffns.0.layers.{0.0,1}``, ``norms.{0,1,2}``.

**FFN width.** Upstream's decoder layer swallows ``feedforward_channels`` / ``ffn_dropout``
from the config in a ``**kwargs`` sink and builds its FFN from its own ``ffn_cfgs`` default
(1024 channels, no dropout); the published checkpoints therefore hold a 1024-wide FFN while
the configs say 2048. We accept both keys explicitly, document that they do not shape the
network, and build the FFN from ``ffn_cfgs`` with the same 1024-wide default.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .ffn import build_norm
from ...registry import MODELS

OPERATIONS = ("self_attn", "norm", "cross_attn", "ffn")
# The FFN of RayDN's published decoder layers (see the module docstring).
DEFAULT_FFN_CFG = dict(
    type="FFN",
    feedforward_channels=1024,
    num_fcs=2,
    ffn_drop=0.0,
    act_cfg=dict(type="ReLU", inplace=True),
)


def _attention_cfgs(attn_cfgs: Union[dict, Sequence[dict]], num_attn: int, batch_first: bool) -> list[dict]:
    """One config per attention in ``operation_order``, with a consistent ``batch_first``."""
    cfgs = [copy.deepcopy(attn_cfgs) for _ in range(num_attn)] if isinstance(attn_cfgs, dict) else [
        copy.deepcopy(dict(cfg)) for cfg in attn_cfgs
    ]
    if len(cfgs) != num_attn:
        raise ValueError(
            f"attn_cfgs has {len(cfgs)} entries but operation_order has {num_attn} attentions"
        )
    for cfg in cfgs:
        if cfg.setdefault("batch_first", batch_first) != batch_first:
            raise ValueError(
                f"attention {cfg.get('type')!r} sets batch_first={cfg['batch_first']} but the "
                f"decoder layer has batch_first={batch_first}"
            )
    return cfgs


@MODELS.register_module()
class Detr3DTemporalDecoderLayer(nn.Module):
    """One temporal decoder layer with mmcv ``BaseTransformerLayer`` parameter names.

    Args:
        attn_cfgs: Configs of the attentions in ``operation_order`` order (one dict is
            repeated). The ``self_attn`` is an mmcv-style ``MultiheadAttention``; the
            ``cross_attn`` a :class:`DeformableFeatureAggregation`.
        operation_order: Sequence of ``'self_attn' | 'cross_attn' | 'norm' | 'ffn'``;
            starting with ``'norm'`` makes the layer pre-norm.
        ffn_cfgs: FFN config (``embed_dims`` defaults to the attentions'); defaults to the
            1024-wide FFN of the published checkpoints.
        norm_cfg: Normalisation config (``LN``).
        batch_first: Must be True: queries are ``(B, Q, C)``.
        with_cp: Gradient checkpointing of the whole layer while training.
        feedforward_channels: Accepted from RayDN configs; does **not** set the FFN width
            (upstream ignores it too; see the module docstring). Use ``ffn_cfgs``.
        ffn_dropout: Accepted from RayDN configs; ignored like ``feedforward_channels``.
    """

    def __init__(
        self,
        attn_cfgs: Union[dict, Sequence[dict]],
        operation_order: Sequence[str],
        ffn_cfgs: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
        batch_first: bool = True,
        with_cp: bool = True,
        feedforward_channels: Optional[int] = None,
        ffn_dropout: Optional[float] = None,
    ) -> None:
        super().__init__()
        unknown = set(operation_order) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"operation_order has unknown operations {sorted(unknown)}; use {OPERATIONS}")
        if not batch_first:
            raise ValueError("Detr3DTemporalDecoderLayer supports only batch_first=True")
        self.operation_order = tuple(operation_order)
        self.pre_norm = self.operation_order[0] == "norm"
        self.batch_first = batch_first
        self.use_checkpoint = with_cp
        self.config_feedforward_channels = feedforward_channels
        self.config_ffn_dropout = ffn_dropout
        num_attn = sum(op in ("self_attn", "cross_attn") for op in self.operation_order)
        self.attentions = nn.ModuleList(
            MODELS.build(cfg) for cfg in _attention_cfgs(attn_cfgs, num_attn, batch_first)
        )
        self.embed_dims = self.attentions[0].embed_dims
        ffn_cfg = dict(copy.deepcopy(DEFAULT_FFN_CFG if ffn_cfgs is None else ffn_cfgs))
        if ffn_cfg.setdefault("embed_dims", self.embed_dims) != self.embed_dims:
            raise ValueError(
                f"ffn_cfgs.embed_dims={ffn_cfg['embed_dims']} differs from the attentions' "
                f"embed_dims={self.embed_dims}"
            )
        self.ffns = nn.ModuleList(
            MODELS.build(copy.deepcopy(ffn_cfg)) for _ in range(self.operation_order.count("ffn"))
        )
        norm_cfg = dict(type="LN") if norm_cfg is None else norm_cfg
        self.norms = nn.ModuleList(
            build_norm(norm_cfg, self.embed_dims) for _ in range(self.operation_order.count("norm"))
        )

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor,
        feat_flatten: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        reference_points: Tensor,
        pc_range: Tensor,
        lidar2img: Tensor,
        image_size: Sequence[int],
        temp_memory: Optional[Tensor] = None,
        temp_pos: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
    ) -> Tensor:
        """Run the layer (checkpointed while training when ``with_cp``).

        Args:
            query: ``(B, Q, C)``; query_pos: ``(B, Q, C)``.
            feat_flatten: ``(B*N, sum(H_l*W_l), C)`` image tokens; spatial_shapes: ``L`` pairs.
            reference_points: ``(B, Q, 3)`` normalised to ``pc_range`` ``(6,)``.
            lidar2img: ``(B, N, 4, 4)``; image_size: padded ``(H, W)``.
            temp_memory / temp_pos: ``(B, M, C)`` extra self-attention keys, or None.
            attn_mask: ``(Q, Q + M)`` bool, True = not allowed, or None.

        Returns:
            ``(B, Q, C)``.
        """
        args = (query, query_pos, feat_flatten, spatial_shapes, reference_points, pc_range,
                lidar2img, image_size, temp_memory, temp_pos, attn_mask)
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return checkpoint(self._forward, *args, use_reentrant=False)
        return self._forward(*args)

    def _forward(self, query, query_pos, feat_flatten, spatial_shapes, reference_points,
                 pc_range, lidar2img, image_size, temp_memory, temp_pos, attn_mask) -> Tensor:
        """The operations in ``operation_order`` (arguments as in :meth:`forward`)."""
        norm_index = attn_index = ffn_index = 0
        identity = query
        for op in self.operation_order:
            if op == "self_attn":
                key = query if temp_memory is None else torch.cat([query, temp_memory], dim=1)
                key_pos = query_pos if temp_pos is None else torch.cat([query_pos, temp_pos], dim=1)
                query = self.attentions[attn_index](
                    query, key, key, identity if self.pre_norm else None,
                    query_pos=query_pos, key_pos=key_pos, attn_mask=attn_mask,
                )
                attn_index += 1
                identity = query
            elif op == "norm":
                query = self.norms[norm_index](query)
                norm_index += 1
            elif op == "cross_attn":
                query = self.attentions[attn_index](
                    query, query_pos, feat_flatten, reference_points, spatial_shapes,
                    pc_range, lidar2img, image_size,
                )
                attn_index += 1
                identity = query
            else:
                query = self.ffns[ffn_index](query, identity if self.pre_norm else None)
                ffn_index += 1
        return query


@MODELS.register_module()
class Detr3DTransformerDecoder(nn.Module):
    """A stack of decoder layers returning every layer's output.

    Args:
        num_layers: Number of layers.
        transformerlayers: One layer config (deep-copied per layer) or one per layer.
        embed_dims: Channels; checked against the layers' when given.
    """

    def __init__(
        self,
        num_layers: int,
        transformerlayers: Union[dict, Sequence[dict]],
        embed_dims: Optional[int] = None,
    ) -> None:
        super().__init__()
        if isinstance(transformerlayers, dict):
            cfgs = [copy.deepcopy(transformerlayers) for _ in range(num_layers)]
        else:
            cfgs = [copy.deepcopy(dict(cfg)) for cfg in transformerlayers]
        if len(cfgs) != num_layers:
            raise ValueError(f"transformerlayers has {len(cfgs)} configs for num_layers={num_layers}")
        self.layers = nn.ModuleList(MODELS.build(cfg) for cfg in cfgs)
        self.num_layers = num_layers
        self.embed_dims = self.layers[0].embed_dims
        if embed_dims is not None and embed_dims != self.embed_dims:
            raise ValueError(f"decoder embed_dims={embed_dims} differs from its layers' {self.embed_dims}")

    def forward(self, query: Tensor, query_pos: Tensor, feat_flatten: Tensor,
                spatial_shapes: Sequence[tuple[int, int]], reference_points: Tensor,
                pc_range: Tensor, lidar2img: Tensor, image_size: Sequence[int],
                temp_memory: Optional[Tensor] = None, temp_pos: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Run all layers (arguments as in :meth:`Detr3DTemporalDecoderLayer.forward`).

        Returns:
            ``(num_layers, B, Q, C)`` the output of every layer.
        """
        outputs = []
        for layer in self.layers:
            query = layer(query, query_pos, feat_flatten, spatial_shapes, reference_points,
                          pc_range, lidar2img, image_size, temp_memory, temp_pos, attn_mask)
            outputs.append(query)
        return torch.stack(outputs)


@MODELS.register_module()
class Detr3DTransformer(nn.Module):
    """Holds the decoder (``transformer.decoder.*`` in checkpoints).

    Args:
        decoder: Config of a :class:`Detr3DTransformerDecoder`.
    """

    def __init__(self, decoder: dict) -> None:
        super().__init__()
        self.decoder = MODELS.build(decoder)
        self.embed_dims = self.decoder.embed_dims

    def init_weights(self) -> None:
        """Xavier-uniform every matrix, then the attentions' own initialisation."""
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.modules():
            if module is not self and hasattr(module, "init_weights"):
                module.init_weights()

    def forward(self, query: Tensor, query_pos: Tensor, feat_flatten: Tensor,
                spatial_shapes: Sequence[tuple[int, int]], reference_points: Tensor,
                pc_range: Tensor, lidar2img: Tensor, image_size: Sequence[int],
                temp_memory: Optional[Tensor] = None, temp_pos: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Decode; arguments as in :meth:`Detr3DTemporalDecoderLayer.forward`.

        Returns:
            ``(num_layers, B, Q, C)``.
        """
        return self.decoder(query, query_pos, feat_flatten, spatial_shapes, reference_points,
                            pc_range, lidar2img, image_size, temp_memory, temp_pos, attn_mask)
