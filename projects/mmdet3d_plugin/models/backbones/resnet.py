"""ResNet-18/34/50/101/152 with torchvision / mmdet parameter names.

State-dict keys are torchvision's (``conv1``, ``bn1``, ``layer{1..4}.{j}.conv{k}``,
``bn{k}``, ``downsample.0/1``), so ``torchvision://resnet50`` weights and the
``img_backbone.*`` part of StreamPETR / RayDN checkpoints load strictly. Arguments follow
mmdet's ``ResNet`` as used in those configs::

    img_backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(2, 3),
                      frozen_stages=-1, norm_cfg=dict(type='BN2d', requires_grad=False),
                      norm_eval=True, with_cp=True, style='pytorch',
                      init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))

Weights are initialised (randomly or from the pretrained file) only by an explicit
:meth:`ResNet.init_weights` call, as in mmdet: building a model does no I/O and stays fast
and offline; the detector (or training entry point) calls ``init_weights()`` once.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...core.checkpoint import apply_state_dict
from .pretrained import (
    pretrained_init_args,
    read_pretrained_state_dict,
)
from ..necks.conv_module import build_norm_layer, check_conv_cfg
from ...registry import MODELS

logger = logging.getLogger(__name__)

_BN_TYPES = ("BN", "BN2d", "SyncBN")
_STYLES = ("pytorch", "caffe")


class _FrozenBNStatistics:
    """While active, BN layers of ``module`` in training mode still normalise with the batch
    statistics but leave ``running_mean`` / ``running_var`` / ``num_batches_tracked`` as
    they are (momentum 0, counter restored): the recomputation pass of gradient
    checkpointing must not count the batch a second time. Re-enterable: a graph kept with
    ``retain_graph`` is recomputed once per backward, with the same context object."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._saved: list[list[tuple[nn.Module, Any, torch.Tensor]]] = []

    def __enter__(self) -> None:
        norms = [m for m in self.module.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
        self._saved.append([(m, m.momentum, m.num_batches_tracked.clone()) for m in norms])
        for norm in norms:
            norm.momentum = 0.0

    def __exit__(self, *exc: Any) -> None:
        for norm, momentum, count in self._saved.pop():
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


class _ResidualBlock(nn.Module):
    """Shared forward of the two block types: residual branch + shortcut, then ReLU.

    With ``with_cp`` the block body runs under ``torch.utils.checkpoint`` while training
    with gradients enabled (activations are recomputed in backward to save memory). The
    recomputation does not update BN running statistics, so trainable BN
    (``norm_eval=False``) sees each batch once, exactly as without checkpointing.
    """

    expansion = 1
    last_norm = ""

    def __init__(self, downsample: nn.Module | None, with_cp: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.with_cp = with_cp

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self._branch(x) + identity

    def _checkpoint_contexts(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        """``torch.utils.checkpoint`` contexts: plain forward, recomputation without BN updates."""
        return contextlib.nullcontext(), _FrozenBNStatistics(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) → (B, planes * expansion, H / stride, W / stride)."""
        if self.with_cp and self.training and torch.is_grad_enabled():
            out = checkpoint(self._body, x, use_reentrant=False, context_fn=self._checkpoint_contexts)
        else:
            out = self._body(x)
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3×3 convolutions (ResNet-18/34); the stride sits on ``conv1``."""

    expansion = 1
    last_norm = "bn2"

    def __init__(
        self, inplanes: int, planes: int, stride: int, dilation: int,
        downsample: nn.Module | None, style: str, with_cp: bool, norm_cfg: Mapping[str, Any],
    ) -> None:
        super().__init__(downsample, with_cp)
        del style  # both styles put the stride on the first 3×3 conv of a basic block
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, planes)[1]
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, planes)[1]

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """1×1 → 3×3 → 1×1 (ResNet-50/101/152).

    'pytorch' style puts the stride on the 3×3 conv, 'caffe' style on the first 1×1.
    """

    expansion = 4
    last_norm = "bn3"

    def __init__(
        self, inplanes: int, planes: int, stride: int, dilation: int,
        downsample: nn.Module | None, style: str, with_cp: bool, norm_cfg: Mapping[str, Any],
    ) -> None:
        super().__init__(downsample, with_cp)
        stride1, stride2 = (1, stride) if style == "pytorch" else (stride, 1)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, planes)[1]
        self.conv2 = nn.Conv2d(planes, planes, 3, stride2, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, planes)[1]
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, planes * self.expansion)[1]

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


#: depth → (block type, blocks per stage).
ARCH_SETTINGS: Mapping[int, tuple[type[_ResidualBlock], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def make_res_layer(
    block: type[_ResidualBlock], inplanes: int, planes: int, num_blocks: int, stride: int,
    dilation: int, style: str, with_cp: bool, norm_cfg: Mapping[str, Any],
) -> nn.Sequential:
    """One stage: ``num_blocks`` blocks, the first strided with a 1×1 projection shortcut."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
            build_norm_layer(norm_cfg, planes * block.expansion)[1],
        )
    blocks = [block(inplanes, planes, stride, dilation, downsample, style, with_cp, norm_cfg)]
    for _ in range(1, num_blocks):
        blocks.append(block(planes * block.expansion, planes, 1, dilation, None, style, with_cp, norm_cfg))
    return nn.Sequential(*blocks)


def _check_unsupported(**options: Any) -> None:
    """Raise for mmdet ResNet options this implementation does not provide."""
    enabled = [name for name, value in options.items() if value]
    if enabled:
        raise ValueError(
            f"ResNet options {enabled} are not supported (implemented: plain torchvision-style "
            "stem and blocks); set deep_stem=False, avg_down=False, dcn=None, "
            "stage_with_dcn all False, plugins=None"
        )


@MODELS.register_module()
class ResNet(nn.Module):
    """ResNet backbone returning the feature maps of the stages in ``out_indices``.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input image channels.
        stem_channels: channels of the 7×7 stem; default ``base_channels``.
        base_channels: channels of the first stage (before block expansion).
        num_stages: stages built (1–4); ``layer{i}`` exists for i ≤ num_stages.
        strides, dilations: per stage (first ``num_stages`` used).
        out_indices: stages whose outputs are returned (0-based).
        style: 'pytorch' (stride on the 3×3 conv) or 'caffe' (on the first 1×1).
        frozen_stages: stem and stages 1..frozen_stages get ``requires_grad=False`` and stay
            in eval mode; -1 freezes nothing.
        conv_cfg: None or ``dict(type='Conv2d')``.
        norm_cfg: BatchNorm config ('BN', 'BN2d', 'SyncBN' → ``nn.BatchNorm2d``);
            ``requires_grad=False`` freezes every BN weight and bias.
        norm_eval: keep all BN layers in eval mode (frozen running statistics) in training.
        with_cp: gradient checkpointing per block while training. The recomputation in
            backward runs each BatchNorm again on the same batch; unlike mmdet (where
            trainable BN would then count every batch twice) it leaves the running
            statistics alone, so ``with_cp`` changes memory and time, not the result.
        zero_init_residual: zero the last BN weight of each block in random init.
        pretrained: checkpoint name (older spelling of ``init_cfg``).
        init_cfg: ``dict(type='Pretrained', checkpoint=..., prefix=None)``.
        deep_stem, avg_down, dcn, stage_with_dcn, plugins: accepted only at their
            mmdet defaults (unsupported otherwise; a clear error is raised).

    Attributes:
        stage_channels, stage_strides: channels and stride of every built stage.
        out_channels, out_strides: the same for the stages in ``out_indices``.
    """

    def __init__(
        self,
        depth: int,
        in_channels: int = 3,
        stem_channels: int | None = None,
        base_channels: int = 64,
        num_stages: int = 4,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = "pytorch",
        deep_stem: bool = False,
        avg_down: bool = False,
        frozen_stages: int = -1,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] = dict(type="BN", requires_grad=True),  # noqa: B006 (mmdet default)
        norm_eval: bool = True,
        dcn: Mapping[str, Any] | None = None,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        plugins: Sequence[Any] | None = None,
        with_cp: bool = False,
        zero_init_residual: bool = True,
        pretrained: str | None = None,
        init_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        _check_unsupported(deep_stem=deep_stem, avg_down=avg_down, dcn=dcn is not None,
                           stage_with_dcn=any(stage_with_dcn), plugins=bool(plugins))
        self._validate(depth, num_stages, strides, dilations, out_indices, style, frozen_stages, norm_cfg)
        check_conv_cfg(conv_cfg)
        self.depth = depth
        self.num_stages = num_stages
        self.out_indices = tuple(sorted(set(out_indices)))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self._pretrained = pretrained_init_args(dict(init_cfg) if init_cfg else None, pretrained, "ResNet")
        self.block, stage_blocks = ARCH_SETTINGS[depth]
        stem_channels = base_channels if stem_channels is None else stem_channels

        self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, stem_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.res_layers: list[str] = []
        channels, stage_strides = self._build_stages(stem_channels, base_channels, stage_blocks, strides,
                                                     dilations, style, with_cp, norm_cfg)
        self.stage_channels = tuple(channels)
        self.stage_strides = tuple(stage_strides)
        self.out_channels = tuple(self.stage_channels[i] for i in self.out_indices)
        self.out_strides = tuple(self.stage_strides[i] for i in self.out_indices)
        self._freeze_stages()

    def _build_stages(self, inplanes: int, base_channels: int, stage_blocks: Sequence[int],
                      strides: Sequence[int], dilations: Sequence[int], style: str, with_cp: bool,
                      norm_cfg: Mapping[str, Any]) -> tuple[list[int], list[int]]:
        """Add ``layer1..layer{num_stages}``; return their output channels and strides."""
        channels, stage_strides, total_stride = [], [], 4
        for i in range(self.num_stages):
            planes = base_channels * 2**i
            layer = make_res_layer(self.block, inplanes, planes, stage_blocks[i], strides[i],
                                   dilations[i], style, with_cp, norm_cfg)
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")
            inplanes = planes * self.block.expansion
            total_stride *= strides[i]
            channels.append(inplanes)
            stage_strides.append(total_stride)
        return channels, stage_strides

    @staticmethod
    def _validate(depth: int, num_stages: int, strides: Sequence[int], dilations: Sequence[int],
                  out_indices: Sequence[int], style: str, frozen_stages: int,
                  norm_cfg: Mapping[str, Any]) -> None:
        if depth not in ARCH_SETTINGS:
            raise ValueError(f"ResNet depth must be one of {list(ARCH_SETTINGS)}, got {depth}")
        if not 1 <= num_stages <= 4:
            raise ValueError(f"ResNet num_stages must be in 1..4, got {num_stages}")
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError(f"ResNet strides {tuple(strides)} and dilations {tuple(dilations)} "
                             f"need one entry per stage ({num_stages})")
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f"ResNet out_indices {tuple(out_indices)} must be non-empty stage "
                             f"indices in 0..{num_stages - 1}")
        if style not in _STYLES:
            raise ValueError(f"ResNet style must be one of {_STYLES}, got '{style}'")
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f"ResNet frozen_stages must be in -1..{num_stages}, got {frozen_stages}")
        if norm_cfg.get("type") not in _BN_TYPES:
            raise ValueError(f"ResNet norm_cfg type must be one of {_BN_TYPES}, got {norm_cfg.get('type')!r}")

    def _freeze_stages(self) -> None:
        """Stem and stages 1..frozen_stages: eval mode, no gradients."""
        if self.frozen_stages < 0:
            return
        stages = [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        frozen = [self.conv1, self.bn1] + stages
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> ResNet:
        """Set train/eval mode, keeping frozen stages (and all BN under ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """Initialise from the configured pretrained checkpoint, or randomly (mmdet's Kaiming).

        Pretrained: the file is resolved (``torchvision://`` names are downloaded when not
        cached), its backbone keys selected, ``fc.*`` and stages beyond ``num_stages`` dropped
        (logged), and the rest loaded strictly.
        """
        if self._pretrained is None:
            self._init_random()
            return
        state = read_pretrained_state_dict(**self._pretrained)
        kept_prefixes = ("conv1.", "bn1.") + tuple(f"{name}." for name in self.res_layers)
        dropped = {k for k in state if not k.startswith(kept_prefixes) and k.startswith(("fc.", "layer"))}
        if dropped:
            logger.info("ResNet-%d: ignoring %d checkpoint entries not in this model: %s",
                        self.depth, len(dropped), sorted(dropped)[:6])
        state = {k: v for k, v in state.items() if k not in dropped}
        apply_state_dict(self, state, strict=True, source=f"pretrained '{self._pretrained['checkpoint']}'")

    def _init_random(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.zero_init_residual:
            for module in self.modules():
                if isinstance(module, _ResidualBlock):
                    nn.init.zeros_(getattr(module, module.last_norm).weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, C_in, H, W) → per out index k: (B, out_channels[k], H / out_strides[k], W / out_strides[k])."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
