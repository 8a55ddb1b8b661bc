"""Feature Pyramid Network with mmdet's arguments and parameter names.

Children are ``lateral_convs.{i}.conv`` (1×1, one per used backbone level) and
``fpn_convs.{j}.conv`` (3×3 output convs, followed by the stride-2 extra convs), so the
``img_neck.*`` keys of RayDN / HarmoDistill checkpoints load unchanged. RayDN's neck::

    img_neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=256,
                  start_level=1, add_extra_convs='on_output', relu_before_extra_convs=True,
                  num_outs=4)   # strides 8, 16, 32, 64
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .conv_module import ConvModule
from ...registry import MODELS

_EXTRA_SOURCES = ("on_input", "on_lateral", "on_output")
_UPSAMPLE_KEYS = ("mode", "scale_factor", "align_corners")
_XAVIER_DEFAULT = dict(type="Xavier", layer="Conv2d", distribution="uniform")


def _check_upsample_cfg(upsample_cfg: Mapping[str, Any]) -> dict[str, Any]:
    for key in upsample_cfg:
        if key not in _UPSAMPLE_KEYS:
            close = difflib.get_close_matches(key, _UPSAMPLE_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"upsample_cfg has no key '{key}' (allowed: {list(_UPSAMPLE_KEYS)}){hint}")
    return dict(upsample_cfg)


def _check_init_cfg(init_cfg: Mapping[str, Any] | None, owner: str) -> dict[str, Any] | None:
    """Accept None (ConvModule's Kaiming init) or mmdet's Xavier ``init_cfg``."""
    if init_cfg is None:
        return None
    cfg = dict(init_cfg)
    if (cfg.get("type") != "Xavier" or cfg.get("layer", "Conv2d") != "Conv2d"
            or cfg.get("distribution", "normal") not in ("uniform", "normal")
            or set(cfg) - {"type", "layer", "distribution", "gain", "bias"}):
        raise ValueError(
            f"{owner}: unsupported init_cfg {cfg}; use None or dict(type='Xavier', "
            "layer='Conv2d', distribution='uniform'|'normal', gain=1, bias=0)"
        )
    return cfg


@MODELS.register_module()
class FPN(nn.Module):
    """Top-down feature pyramid: 1×1 laterals, nearest upsampling + sum, 3×3 outputs.

    Args:
        in_channels: channels of each backbone level.
        out_channels: channels of every output level.
        num_outs: output levels; those beyond the used backbone levels are extra levels
            (stride-2 max-pool, or stride-2 3×3 convs with ``add_extra_convs``).
        start_level: first backbone level used.
        end_level: last backbone level used, inclusive (-1: the last); with a level before
            the last, no extra level is allowed.
        add_extra_convs: False (max-pool extras), True (= 'on_input'), or the extra convs'
            source: 'on_input' (last used backbone map), 'on_lateral', 'on_output'.
        relu_before_extra_convs: ReLU before every extra conv but the first.
        no_norm_on_lateral: no norm on the lateral convs even with ``norm_cfg``.
        conv_cfg, norm_cfg, act_cfg: of every :class:`ConvModule`.
        upsample_cfg: ``F.interpolate`` arguments (``mode``, ``scale_factor``, ...).
        init_cfg: None or ``dict(type='Xavier', layer='Conv2d', distribution=...)``.

    Attributes:
        out_channels: channels of every output; ``num_outs``: number of outputs.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        relu_before_extra_convs: bool = False,
        no_norm_on_lateral: bool = False,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        act_cfg: Mapping[str, Any] | None = None,
        upsample_cfg: Mapping[str, Any] = dict(mode="nearest"),  # noqa: B006 (mmdet default)
        init_cfg: Mapping[str, Any] | None = _XAVIER_DEFAULT,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.backbone_end_level = self._end_level(end_level, num_outs)
        self.add_extra_convs = self._extra_source(add_extra_convs)
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = _check_upsample_cfg(upsample_cfg)
        self.init_cfg = _check_init_cfg(init_cfg, name)
        conv_args = dict(conv_cfg=conv_cfg, act_cfg=act_cfg, inplace=False)
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for level in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(
                self.in_channels[level], out_channels, 1,
                norm_cfg=None if no_norm_on_lateral else norm_cfg, **conv_args))
            if self._has_output_conv(level):
                self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1,
                                                 norm_cfg=norm_cfg, **conv_args))
        self.num_output_convs = len(self.fpn_convs)
        if self.add_extra_convs:
            for i in range(self.num_extra_levels):
                source_channels = (self.in_channels[self.backbone_end_level - 1]
                                   if i == 0 and self.add_extra_convs == "on_input" else out_channels)
                self.fpn_convs.append(ConvModule(source_channels, out_channels, 3, stride=2, padding=1,
                                                 norm_cfg=norm_cfg, **conv_args))

    def _end_level(self, end_level: int, num_outs: int) -> int:
        """The exclusive index of the last used backbone level (``end_level`` inclusive)."""
        num_ins = len(self.in_channels)
        if not 0 <= self.start_level < num_ins:
            raise ValueError(f"FPN start_level {self.start_level} must index in_channels (0..{num_ins - 1})")
        if end_level in (-1, num_ins - 1):
            if num_outs < num_ins - self.start_level:
                raise ValueError(f"FPN num_outs ({num_outs}) must cover the {num_ins - self.start_level} "
                                 f"backbone levels from start_level {self.start_level}")
            return num_ins
        if not self.start_level <= end_level < num_ins or num_outs != end_level - self.start_level + 1:
            raise ValueError(f"FPN end_level {end_level} must be in {self.start_level}..{num_ins - 1} "
                             f"and num_outs ({num_outs}) must equal end_level - start_level + 1 "
                             "(no extra levels)")
        return end_level + 1

    @staticmethod
    def _extra_source(add_extra_convs: bool | str) -> str | bool:
        if add_extra_convs is True:
            return "on_input"
        if add_extra_convs is False or add_extra_convs in _EXTRA_SOURCES:
            return add_extra_convs
        raise ValueError(
            f"add_extra_convs must be a bool or one of {_EXTRA_SOURCES}, got {add_extra_convs!r}"
        )

    def _has_output_conv(self, level: int) -> bool:
        """Whether backbone level ``level`` gets a 3×3 output conv (all levels in FPN)."""
        return True

    @property
    def num_extra_levels(self) -> int:
        """Output levels beyond the used backbone levels."""
        return self.num_outs - (self.backbone_end_level - self.start_level)

    def init_weights(self) -> None:
        """Xavier init of every conv per ``init_cfg`` (bias 0); Kaiming when ``init_cfg`` is None."""
        for module in self.modules():
            if isinstance(module, ConvModule):
                module.init_weights()
        if self.init_cfg is None:
            return
        uniform = self.init_cfg.get("distribution", "normal") == "uniform"
        init = nn.init.xavier_uniform_ if uniform else nn.init.xavier_normal_
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init(module.weight, gain=self.init_cfg.get("gain", 1))
                if module.bias is not None:
                    nn.init.constant_(module.bias, self.init_cfg.get("bias", 0))

    def _top_down(self, laterals: list[torch.Tensor]) -> list[torch.Tensor]:
        """Add each coarser lateral, upsampled, to the next finer one (coarse → fine)."""
        for i in range(len(laterals) - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up
        return laterals

    def _level_outputs(self, laterals: list[torch.Tensor]) -> list[torch.Tensor]:
        """Apply the 3×3 output conv of each used level."""
        return [conv(lateral) for conv, lateral in zip(self.fpn_convs[:self.num_output_convs], laterals)]

    def _extra_outputs(self, inputs: Sequence[torch.Tensor], laterals: list[torch.Tensor],
                       outs: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.add_extra_convs:
            for _ in range(self.num_extra_levels):
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            return outs
        source = {"on_input": inputs[self.backbone_end_level - 1], "on_lateral": laterals[-1],
                  "on_output": outs[-1]}[self.add_extra_convs]
        for i, conv in enumerate(self.fpn_convs[self.num_output_convs:]):
            if i > 0:
                source = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
            outs.append(conv(source))
        return outs

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Backbone maps [(B, in_channels[i], H_i, W_i)] → ``num_outs`` maps (B, out_channels, H_k, W_k).

        Output k has the stride of backbone level ``start_level + k``; each extra level
        halves the resolution of the previous one.
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"{type(self).__name__} expects {len(self.in_channels)} feature maps "
                             f"(in_channels={self.in_channels}), got {len(inputs)}")
        laterals = [conv(inputs[self.start_level + i]) for i, conv in enumerate(self.lateral_convs)]
        laterals = self._top_down(laterals)
        outs = self._level_outputs(laterals)
        return tuple(self._extra_outputs(inputs, laterals, outs))
