"""Motion-aware layer normalisation (MLN) and the linear squeeze-excitation gate.

Both are StreamPETR building blocks; parameter names follow the published checkpoints
(``reduce.0``, ``gamma``, ``beta`` for MLN; ``conv_reduce``, ``conv_expand`` for the gate).
"""
from __future__ import annotations

from typing import Type

from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class MLN(nn.Module):
    """Layer norm whose scale and shift are predicted from a condition vector.

    ``out = gamma(c') * LN(x) + beta(c')`` with ``c' = ReLU(Linear(c))``. At
    initialisation ``gamma`` outputs 1 and ``beta`` outputs its bias, 0 by default, so the
    module starts as a plain, affine-free layer norm.

    Args:
        c_dim: channels of the condition ``c``.
        f_dim: channels of the features ``x``.
        use_ln: normalise ``x`` before modulation (the layer norm has no parameters either
            way, so the state dict does not depend on it).
        beta_bias_std: standard deviation of the initial ``beta`` bias (a shift shared by
            every input); 0 (upstream's initialisation) starts with no shift. An MLN fed
            inputs without content (all zeros) needs a non-zero shift, see
            :mod:`..dense_heads.sparse_query_head`.
    """

    def __init__(self, c_dim: int, f_dim: int = 256, use_ln: bool = True,
                 beta_bias_std: float = 0.0) -> None:
        super().__init__()
        if beta_bias_std < 0:
            raise ValueError(f"MLN: beta_bias_std must be >= 0, got {beta_bias_std}")
        self.c_dim = c_dim
        self.f_dim = f_dim
        self.use_ln = use_ln
        self.beta_bias_std = float(beta_bias_std)
        self.reduce = nn.Sequential(nn.Linear(c_dim, f_dim), nn.ReLU())
        self.gamma = nn.Linear(f_dim, f_dim)
        self.beta = nn.Linear(f_dim, f_dim)
        self.ln = nn.LayerNorm(f_dim, elementwise_affine=False) if use_ln else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gamma weight 0 / bias 1, beta weight 0 / bias ``N(0, beta_bias_std²)`` (0 by default):
        the modulation is the identity, plus a constant shift when ``beta_bias_std > 0``."""
        nn.init.zeros_(self.gamma.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.normal_(self.beta.bias, std=self.beta_bias_std)

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
