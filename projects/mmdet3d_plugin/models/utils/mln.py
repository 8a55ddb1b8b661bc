"""Motion-aware layer normalisation (MLN) and the linear squeeze-excitation gate.

Both are StreamPETR building blocks; parameter names follow the published checkpoints
(``reduce.0``, ``gamma``, ``beta`` for MLN; ``conv_reduce``, ``conv_expand`` for the gate).
"""
from __future__ import annotations

from typing import Type

from torch import Tensor, nn

from projects.mmdet3d_plugin.registry import MODELS


@MODELS.register_module()
class MLN(nn.Module):
    """Layer norm whose scale and shift are predicted from a condition vector.

    ``out = gamma(c') * LN(x) + beta(c')`` with ``c' = ReLU(Linear(c))``. At
    initialisation ``gamma`` outputs 1 and ``beta`` 0, so the module starts as a plain,
    affine-free layer norm.

    Args:
        c_dim: channels of the condition ``c``.
        f_dim: channels of the features ``x``.
        use_ln: normalise ``x`` before modulation (the layer norm has no parameters either
            way, so the state dict does not depend on it).
    """

    def __init__(self, c_dim: int, f_dim: int = 256, use_ln: bool = True) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.f_dim = f_dim
        self.use_ln = use_ln
        self.reduce = nn.Sequential(nn.Linear(c_dim, f_dim), nn.ReLU())
        self.gamma = nn.Linear(f_dim, f_dim)
        self.beta = nn.Linear(f_dim, f_dim)
        self.ln = nn.LayerNorm(f_dim, elementwise_affine=False) if use_ln else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Make the modulation the identity: gamma weight 0 / bias 1, beta weight 0 / bias 0."""
        nn.init.zeros_(self.gamma.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.zeros_(self.beta.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """Modulate ``x (..., f_dim)`` by ``c (..., c_dim)``; returns ``(..., f_dim)``."""
        x = self.ln(x)
        cond = self.reduce(c)
        return self.gamma(cond) * x + self.beta(cond)


@MODELS.register_module()
class SELayer_Linear(nn.Module):  # noqa: N801 - registered name used by configs
    """Gate ``x`` by ``sigmoid(Linear(ReLU(Linear(x_se))))`` (StreamPETR's featurised PE).

    Args:
        channels: channels of both ``x`` and ``x_se``.
        act_layer: activation class between the two linear layers.
        gate_layer: gating activation class.
    """

    def __init__(
        self,
        channels: int,
        act_layer: Type[nn.Module] = nn.ReLU,
        gate_layer: Type[nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.conv_reduce = nn.Linear(channels, channels)
        self.act1 = act_layer()
        self.conv_expand = nn.Linear(channels, channels)
        self.gate = gate_layer()

    def forward(self, x: Tensor, x_se: Tensor) -> Tensor:
        """Return ``x * gate(x_se)``; ``x`` and ``x_se`` are ``(..., channels)``."""
        x_se = self.conv_expand(self.act1(self.conv_reduce(x_se)))
        return x * self.gate(x_se)
