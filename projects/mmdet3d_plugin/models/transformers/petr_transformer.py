"""StreamPETR's temporal decoder: layer, layer sequence and transformer wrapper.

Module names follow mmcv's transformer bricks so that published checkpoints load with
``strict=True``: ``transformer.decoder.layers.{i}.attentions.{0,1}.attn.*``,
``...ffns.0.layers.*``, ``...norms.{k}`` and ``transformer.decoder.post_norm``.

Everything here is batch first: queries ``(B, Q, C)``, image tokens ``(B, K, C)``.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence, Union

import torch
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from ...registry import MODELS
from .ffn import build_norm

_OPERATIONS = frozenset({"self_attn", "cross_attn", "norm", "ffn"})


def _ffn_cfgs_with_legacy(
    ffn_cfgs: Optional[dict],
    feedforward_channels: Optional[int],
    ffn_dropout: Optional[float],
    ffn_num_fcs: Optional[int],
) -> dict:
    """FFN config, folding in mmcv's deprecated layer-level FFN arguments."""
    cfg = dict(type="FFN", feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
               act_cfg=dict(type="ReLU", inplace=True))
    cfg.update(copy.deepcopy(dict(ffn_cfgs)) if ffn_cfgs is not None else {})
    for value, name in ((feedforward_channels, "feedforward_channels"),
                        (ffn_dropout, "ffn_drop"), (ffn_num_fcs, "num_fcs")):
        if value is not None:
            cfg[name] = value
    return cfg


@MODELS.register_module()
class PETRTemporalDecoderLayer(nn.Module):
    """One decoder layer whose self-attention also attends to the temporal memory.

    Args:
        attn_cfgs: One config per attention in ``operation_order`` (or one dict for all);
            the first is the self-attention, the second the image cross-attention.
        operation_order: e.g. ``('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')``;
            a leading ``'norm'`` makes the layer pre-norm.
        ffn_cfgs: FFN config (``embed_dims`` defaults to the attention's).
        norm_cfg: Norm config of every ``'norm'``.
        batch_first: Passed to the attentions; this module always feeds ``(B, L, C)``.
        with_cp: Gradient checkpointing of the whole layer during training.
        feedforward_channels, ffn_dropout, ffn_num_fcs: mmcv's deprecated aliases of the
            FFN config keys (StreamPETR configs use the first two).
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
        ffn_num_fcs: Optional[int] = None,
    ) -> None:
        super().__init__()
        unknown = set(operation_order) - _OPERATIONS
        if unknown:
            raise ValueError(f"operation_order has unknown entries {sorted(unknown)}; "
                             f"allowed: {sorted(_OPERATIONS)}")
        if not batch_first:
            raise ValueError("PETRTemporalDecoderLayer only supports batch_first=True")
        self.operation_order = tuple(operation_order)
        self.pre_norm = self.operation_order[0] == "norm"
        self.batch_first = batch_first
        self.use_checkpoint = with_cp
        self.attentions = nn.ModuleList(self._build_attentions(attn_cfgs))
        self.embed_dims = self.attentions[0].embed_dims
        ffn_cfg = _ffn_cfgs_with_legacy(ffn_cfgs, feedforward_channels, ffn_dropout, ffn_num_fcs)
        ffn_cfg.setdefault("embed_dims", self.embed_dims)
        if ffn_cfg["embed_dims"] != self.embed_dims:
            raise ValueError(f"ffn_cfgs embed_dims={ffn_cfg['embed_dims']} differs from the "
                             f"attention embed_dims={self.embed_dims}")
        self.ffns = nn.ModuleList(
            MODELS.build(copy.deepcopy(ffn_cfg)) for _ in range(self.operation_order.count("ffn"))
        )
        norm_cfg = dict(type="LN") if norm_cfg is None else norm_cfg
        self.norms = nn.ModuleList(
            build_norm(norm_cfg, self.embed_dims) for _ in range(self.operation_order.count("norm"))
        )

    def _build_attentions(self, attn_cfgs: Union[dict, Sequence[dict]]) -> list[nn.Module]:
        """Build one attention per ``self_attn`` / ``cross_attn`` entry."""
        num_attn = sum(op in ("self_attn", "cross_attn") for op in self.operation_order)
        if isinstance(attn_cfgs, dict):
            attn_cfgs = [attn_cfgs] * num_attn
        if len(attn_cfgs) != num_attn:
            raise ValueError(f"{len(attn_cfgs)} attn_cfgs given for {num_attn} attentions "
                             f"in operation_order {self.operation_order}")
        attentions = []
        for cfg in attn_cfgs:
            cfg = copy.deepcopy(dict(cfg))
            if cfg.setdefault("batch_first", self.batch_first) != self.batch_first:
                raise ValueError(f"attention config {cfg} has batch_first different from the "
                                 f"layer's batch_first={self.batch_first}")
            attentions.append(MODELS.build(cfg))
        return attentions

    def _forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        query_pos: Optional[Tensor],
        key_pos: Optional[Tensor],
        temp_memory: Optional[Tensor],
        temp_pos: Optional[Tensor],
        attn_masks: Sequence[Optional[Tensor]],
        query_key_padding_mask: Optional[Tensor],
        key_padding_mask: Optional[Tensor],
    ) -> Tensor:
        """Run ``operation_order`` once; see :meth:`forward` for shapes."""
        norm_index = attn_index = ffn_index = 0
        identity = query
        for operation in self.operation_order:
            if operation == "norm":
                query = self.norms[norm_index](query)
                norm_index += 1
                continue
            if operation == "ffn":
                query = self.ffns[ffn_index](query, identity if self.pre_norm else None)
                ffn_index += 1
                continue
            if operation == "self_attn":
                keys = query if temp_memory is None else torch.cat([query, temp_memory], 1)
                keys_pos = query_pos if temp_memory is None else torch.cat([query_pos, temp_pos], 1)
                args = (keys, keys, keys_pos, query_key_padding_mask)
            else:
                args = (key, value, key_pos, key_padding_mask)
            query = self.attentions[attn_index](
                query, args[0], args[1], identity if self.pre_norm else None,
                query_pos=query_pos, key_pos=args[2], attn_mask=attn_masks[attn_index],
                key_padding_mask=args[3],
            )
            attn_index += 1
            identity = query
        return query

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        query_pos: Optional[Tensor] = None,
        key_pos: Optional[Tensor] = None,
        temp_memory: Optional[Tensor] = None,
        temp_pos: Optional[Tensor] = None,
        attn_masks: Optional[Sequence[Optional[Tensor]]] = None,
        query_key_padding_mask: Optional[Tensor] = None,
        key_padding_mask: Optional[Tensor] = None,
    ) -> Tensor:
        """Decode ``query (B, Q, C)`` against image tokens ``key``/``value (B, K, C)``.

        Args:
            query_pos: ``(B, Q, C)``; key_pos: ``(B, K, C)``.
            temp_memory, temp_pos: ``(B, M, C)`` memory queries appended to the
                self-attention keys/values (with their positional encodings).
            attn_masks: one mask (or None) per attention; the self-attention mask is
                ``(Q, Q + M)`` bool, True = blocked.
            query_key_padding_mask: ``(B, Q + M)``; key_padding_mask: ``(B, K)``.

        Returns:
            ``(B, Q, C)`` updated queries.
        """
        if attn_masks is None:
            attn_masks = [None] * len(self.attentions)
        if len(attn_masks) != len(self.attentions):
            raise ValueError(f"{len(attn_masks)} attn_masks given for "
                             f"{len(self.attentions)} attentions")
        args = (query, key, value, query_pos, key_pos, temp_memory, temp_pos, list(attn_masks),
                query_key_padding_mask, key_padding_mask)
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, *args, use_reentrant=False)
        return self._forward(*args)



@MODELS.register_module()
class PETRTransformerDecoder(nn.Module):
    """A stack of decoder layers with a shared post-norm on every output.

    Args:
        transformerlayers: One layer config (copied ``num_layers`` times) or a list of
            ``num_layers`` configs.
        num_layers: Number of layers.
        return_intermediate: Return every layer's (post-normed) output, not just the last.
        post_norm_cfg: Norm applied to the outputs (``None``: no norm).
    """

    def __init__(
        self,
        transformerlayers: Union[dict, Sequence[dict]],
        num_layers: int,
        return_intermediate: bool = False,
        post_norm_cfg: Optional[dict] = dict(type="LN"),  # noqa: B006 - read only
    ) -> None:
        super().__init__()
        if isinstance(transformerlayers, dict):
            transformerlayers = [copy.deepcopy(transformerlayers) for _ in range(num_layers)]
        if len(transformerlayers) != num_layers:
            raise ValueError(f"{len(transformerlayers)} transformerlayers configs given for "
                             f"num_layers={num_layers}")
        self.num_layers = num_layers
        self.layers = nn.ModuleList(MODELS.build(copy.deepcopy(cfg)) for cfg in transformerlayers)
        self.embed_dims = self.layers[0].embed_dims
        self.return_intermediate = return_intermediate
        self.post_norm = None if post_norm_cfg is None else build_norm(post_norm_cfg, self.embed_dims)

    def forward(self, query: Tensor, **layer_inputs: Optional[Tensor]) -> Tensor:
        """Run all layers on ``query (B, Q, C)``.

        Args:
            layer_inputs: keyword inputs of :meth:`PETRTemporalDecoderLayer.forward`.

        Returns:
            ``(num_layers, B, Q, C)`` when ``return_intermediate``, else ``(1, B, Q, C)``.
        """
        outputs = []
        for layer in self.layers:
            query = layer(query, **layer_inputs)
            if self.return_intermediate:
                outputs.append(query if self.post_norm is None else self.post_norm(query))
        if not self.return_intermediate:
            outputs.append(query if self.post_norm is None else self.post_norm(query))
        return torch.stack(outputs)


@MODELS.register_module()
class PETRTemporalTransformer(nn.Module):
    """StreamPETR's transformer: a decoder over image tokens plus temporal memory.

    Args:
        decoder: Config of the :class:`PETRTransformerDecoder`.

    All weight matrices are xavier-uniform initialised and biases zeroed (DETR recipe).
    """

    def __init__(self, decoder: dict) -> None:
        super().__init__()
        self.decoder = MODELS.build(copy.deepcopy(decoder))
        self.embed_dims = self.decoder.embed_dims
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform for every module weight with more than one dimension."""
        for module in self.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.dim() > 1:
                nn.init.xavier_uniform_(weight)
                bias = getattr(module, "bias", None)
                if isinstance(bias, nn.Parameter):
                    nn.init.zeros_(bias)

    def forward(
        self,
        memory: Tensor,
        tgt: Tensor,
        query_pos: Tensor,
        pos_embed: Tensor,
        attn_mask: Optional[Tensor],
        temp_memory: Optional[Tensor] = None,
        temp_pos: Optional[Tensor] = None,
    ) -> Tensor:
        """Decode the queries.

        Args:
            memory: ``(B, K, C)`` image tokens; pos_embed: ``(B, K, C)`` their 3D PE.
            tgt: ``(B, Q, C)`` query content; query_pos: ``(B, Q, C)``.
            attn_mask: ``(Q, Q + M)`` bool self-attention mask (True = blocked) or None.
            temp_memory, temp_pos: ``(B, M, C)`` extra self-attention keys or None.

        Returns:
            ``(num_layers, B, Q, C)`` decoder outputs.
        """
        return self.decoder(
            tgt, key=memory, value=memory, query_pos=query_pos, key_pos=pos_embed,
            temp_memory=temp_memory, temp_pos=temp_pos, attn_masks=[attn_mask, None],
        )
