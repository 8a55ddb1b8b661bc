"""Feed-forward network of transformer layers, and the norm / dropout / activation builders.

Parameter names follow mmcv's ``FFN`` so that published StreamPETR / RayDN decoder weights
(``ffns.0.layers.0.0.weight``, ``ffns.0.layers.1.weight``) load unchanged.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Optional

from torch import Tensor, nn

from ...registry import MODELS

_ACTIVATIONS = MappingProxyType(
    {"ReLU": nn.ReLU, "GELU": nn.GELU, "SiLU": nn.SiLU, "Swish": nn.SiLU, "Sigmoid": nn.Sigmoid}
)


def _split_cfg(cfg: dict, kind: str, allowed: tuple[str, ...]) -> tuple[str, dict]:
    """Return ``(type, options)`` of a ``dict(type=...)`` config, rejecting unknown keys."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ValueError(f"{kind} config must be a dict with a 'type' key, got {cfg!r}")
    options = {key: value for key, value in cfg.items() if key != "type"}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"{kind} config {cfg!r}: unknown keys {unknown}; allowed keys are {list(allowed)}"
        )
    return cfg["type"], options


def build_activation(cfg: dict) -> nn.Module:
    """Build an activation from ``dict(type='ReLU' | 'GELU' | 'SiLU' | ..., inplace=...)``."""
    act_type, options = _split_cfg(cfg, "activation", ("inplace",))
    if act_type not in _ACTIVATIONS:
        raise ValueError(f"activation type {act_type!r} unknown; choose from {list(_ACTIVATIONS)}")
    act_cls = _ACTIVATIONS[act_type]
    if act_cls in (nn.ReLU, nn.SiLU):
        return act_cls(inplace=options.get("inplace", False))
    return act_cls()


def build_norm(cfg: dict, dims: int) -> nn.Module:
    """Build a normalisation layer over ``dims`` channels.

    Args:
        cfg: ``dict(type='LN', eps=1e-5)``, ``dict(type='BN1d' | 'BN', eps, momentum)`` or
            ``dict(type='GN', num_groups=...)``; ``requires_grad=False`` freezes it.
        dims: number of channels.

    Returns:
        The layer (``nn.LayerNorm`` / ``nn.BatchNorm1d`` / ``nn.GroupNorm``).
    """
    norm_type, options = _split_cfg(
        cfg, "norm", ("eps", "momentum", "num_groups", "requires_grad")
    )
    eps = options.get("eps", 1e-5)
    if norm_type == "LN":
        layer: nn.Module = nn.LayerNorm(dims, eps=eps)
    elif norm_type in ("BN", "BN1d"):
        layer = nn.BatchNorm1d(dims, eps=eps, momentum=options.get("momentum", 0.1))
    elif norm_type == "GN":
        if "num_groups" not in options:
            raise ValueError(f"norm config {cfg!r}: type 'GN' needs 'num_groups'")
        layer = nn.GroupNorm(options["num_groups"], dims, eps=eps)
    else:
        raise ValueError(f"norm type {norm_type!r} unknown; choose from ['LN', 'BN', 'BN1d', 'GN']")
    for param in layer.parameters():
        param.requires_grad = options.get("requires_grad", True)
    return layer


def build_dropout(cfg: Optional[dict]) -> nn.Module:
    """Build ``dict(type='Dropout', drop_prob=p)`` as ``nn.Dropout(p)``; None gives Identity."""
    if cfg is None:
        return nn.Identity()
    drop_type, options = _split_cfg(cfg, "dropout", ("drop_prob", "inplace"))
    if drop_type != "Dropout":
        raise ValueError(f"dropout type {drop_type!r} unknown; only 'Dropout' is supported")
    return nn.Dropout(p=options.get("drop_prob", 0.5), inplace=options.get("inplace", False))


@MODELS.register_module()
class FFN(nn.Module):
    """``num_fcs`` linear layers with activation and dropout, plus an optional residual.

    Layout (mmcv names): ``layers.{i}`` for ``i < num_fcs - 1`` is
    ``Sequential(Linear, act, Dropout)``; then ``layers.{num_fcs - 1}`` the output Linear
    and ``layers.{num_fcs}`` its Dropout.

    Args:
        embed_dims: input and output channels.
        feedforward_channels: hidden channels.
        num_fcs: number of linear layers (at least 2).
        act_cfg: activation config.
        ffn_drop: dropout probability inside the network.
        dropout_layer: dropout config applied to the output before the residual.
        add_identity: add the residual ``identity`` (defaults to the input).
    """

    def __init__(
        self,
        embed_dims: int = 256,
        feedforward_channels: int = 1024,
        num_fcs: int = 2,
        act_cfg: Optional[dict] = None,
        ffn_drop: float = 0.0,
        dropout_layer: Optional[dict] = None,
        add_identity: bool = True,
    ) -> None:
        super().__init__()
        if num_fcs < 2:
            raise ValueError(f"FFN: num_fcs must be at least 2, got {num_fcs}")
        act_cfg = dict(type="ReLU", inplace=True) if act_cfg is None else act_cfg
        self.embed_dims = embed_dims
        self.feedforward_channels = feedforward_channels
        self.num_fcs = num_fcs
        layers: list[nn.Module] = []
        in_channels = embed_dims
        for _ in range(num_fcs - 1):
            layers.append(
                nn.Sequential(
                    nn.Linear(in_channels, feedforward_channels),
                    build_activation(act_cfg),
                    nn.Dropout(ffn_drop),
                )
            )
            in_channels = feedforward_channels
        layers.append(nn.Linear(feedforward_channels, embed_dims))
        layers.append(nn.Dropout(ffn_drop))
        self.layers = nn.Sequential(*layers)
        self.dropout_layer = build_dropout(dropout_layer)
        self.add_identity = add_identity

    def forward(self, x: Tensor, identity: Optional[Tensor] = None) -> Tensor:
        """Apply the network to ``x (..., embed_dims)``; returns ``(..., embed_dims)``."""
        out = self.dropout_layer(self.layers(x))
        if not self.add_identity:
            return out
        return (x if identity is None else identity) + out
