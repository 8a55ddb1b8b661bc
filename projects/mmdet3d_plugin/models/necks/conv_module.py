"""Conv → norm → activation block with mmcv ``ConvModule`` parameter names.

The block's children are ``conv`` and, when a norm is configured, ``bn`` (BatchNorm) or
``gn`` (GroupNorm), so that published checkpoints (``img_neck.lateral_convs.0.conv.weight``,
``img_roi_head....bn.running_mean``) load unchanged. Norm and activation are given by the
mmcv-style dicts ``norm_cfg=dict(type='BN', requires_grad=True, momentum=..., eps=...)``,
``norm_cfg=dict(type='GN', num_groups=32)`` and ``act_cfg=dict(type='ReLU')``.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...registry import MODELS

#: norm ``type`` → (torch class, attribute name used in state dicts).
NORM_LAYERS: Mapping[str, tuple[type[nn.Module], str]] = {
    "BN": (nn.BatchNorm2d, "bn"),
    "BN2d": (nn.BatchNorm2d, "bn"),
    "SyncBN": (nn.BatchNorm2d, "bn"),
    "GN": (nn.GroupNorm, "gn"),
}
_NORM_ARGS = {
    nn.BatchNorm2d: ("eps", "momentum", "affine", "track_running_stats"),
    nn.GroupNorm: ("num_groups", "eps", "affine"),
}
#: activation ``type`` → (torch class, constructor arguments a config may set).
ACTIVATIONS: Mapping[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "ReLU": (nn.ReLU, ("inplace",)),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope", "inplace")),
    "Swish": (nn.SiLU, ("inplace",)),
    "SiLU": (nn.SiLU, ("inplace",)),
    "Sigmoid": (nn.Sigmoid, ()),
    "GELU": (nn.GELU, ("approximate",)),
    "Tanh": (nn.Tanh, ()),
}


def _check_cfg(cfg: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    """Raise when ``cfg`` holds a key outside ``allowed`` (close matches suggested)."""
    for key in cfg:
        if key != "type" and key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"{what} has no argument '{key}' (allowed: {list(allowed)}){hint}")


def _lookup(table: Mapping[str, Any], name: Any, what: str) -> Any:
    if name not in table:
        by_lower = {key.lower(): key for key in table}
        close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1)
        hint = f"; did you mean '{by_lower[close[0]]}'?" if close else ""
        raise ValueError(f"unsupported {what} type '{name}' (supported: {list(table)}){hint}")
    return table[name]


def build_norm_layer(cfg: Mapping[str, Any], num_features: int) -> tuple[str, nn.Module]:
    """Build a 2D norm layer from an mmcv-style dict.

    Args:
        cfg: ``type`` ('BN', 'BN2d', 'SyncBN' → BatchNorm2d; 'GN' → GroupNorm with
            ``num_groups``), optional ``requires_grad`` (False freezes weight and bias) and
            the torch layer's own arguments (``eps``, ``momentum``, ...).
        num_features: channels C of the (B, C, H, W) input.

    Returns:
        ``(name, layer)``: the attribute name mmcv gives it ('bn' or 'gn') and the layer.
    """
    cls, name = _lookup(NORM_LAYERS, cfg.get("type"), "norm")
    allowed = _NORM_ARGS[cls] + ("requires_grad",)
    _check_cfg(cfg, allowed, f"norm_cfg of type '{cfg['type']}'")
    args = {k: v for k, v in cfg.items() if k not in ("type", "requires_grad")}
    if cls is nn.GroupNorm:
        if "num_groups" not in args:
            raise ValueError("norm_cfg of type 'GN' needs 'num_groups'")
        layer = nn.GroupNorm(num_channels=num_features, **args)
    else:
        layer = cls(num_features, **args)
    for param in layer.parameters():
        param.requires_grad = bool(cfg.get("requires_grad", True))
    return name, layer


def build_activation_layer(cfg: Mapping[str, Any]) -> nn.Module:
    """Build an activation from an mmcv-style dict, e.g. ``dict(type='ReLU', inplace=True)``."""
    cls, allowed = _lookup(ACTIVATIONS, cfg.get("type"), "activation")
    _check_cfg(cfg, allowed, f"act_cfg of type '{cfg['type']}'")
    return cls(**{k: v for k, v in cfg.items() if k != "type"})


def check_conv_cfg(conv_cfg: Mapping[str, Any] | None) -> None:
    """Accept only plain convolutions (``None`` or ``dict(type='Conv2d')``)."""
    if conv_cfg is not None and dict(conv_cfg) not in ({"type": "Conv2d"}, {"type": "Conv"}):
        raise ValueError(
            f"conv_cfg={dict(conv_cfg)} is not supported: only plain convolutions "
            "(conv_cfg=None or dict(type='Conv2d')) are implemented"
        )


@MODELS.register_module()
class ConvModule(nn.Module):
    """``conv`` → optional norm (``bn``/``gn``) → optional activation (``activate``).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as
            ``nn.Conv2d``.
        bias: 'auto' (a bias only when there is no norm) or a bool.
        conv_cfg: None or ``dict(type='Conv2d')``.
        norm_cfg: see :func:`build_norm_layer`; None for no norm.
        act_cfg: see :func:`build_activation_layer`; None for no activation.
        inplace: in-place activation (ReLU family), as in mmcv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool | str = "auto",
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        act_cfg: Mapping[str, Any] | None = None,
        inplace: bool = True,
    ) -> None:
        super().__init__()
        check_conv_cfg(conv_cfg)
        if bias != "auto" and not isinstance(bias, bool):
            raise ValueError(f"ConvModule bias must be 'auto' or a bool, got {bias!r}")
        with_bias = norm_cfg is None if bias == "auto" else bias
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=groups, bias=with_bias,
        )
        self.norm_name: str | None = None
        if norm_cfg is not None:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        self.activate: nn.Module | None = None
        if act_cfg is not None:
            act_cfg = dict(act_cfg)
            settable = ACTIVATIONS.get(act_cfg.get("type"), (None, ()))[1]
            if "inplace" in settable:
                act_cfg.setdefault("inplace", inplace)
            self.activate = build_activation_layer(act_cfg)

    @property
    def norm(self) -> nn.Module | None:
        """The norm layer (``bn`` or ``gn``), or None."""
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self) -> None:
        """Kaiming-normal conv (fan_out, ReLU gain), zero bias; norm weight 1, bias 0."""
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)
        if self.norm is not None and self.norm.weight is not None:
            nn.init.ones_(self.norm.weight)
            nn.init.zeros_(self.norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) → (B, C_out, H', W')."""
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activate is not None:
            x = self.activate(x)
        return x
