"""LinearAdapter: a trainable linear projection of student tokens / queries to the teacher's width."""
from __future__ import annotations

from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class LinearAdapter(nn.Module):
    """``Linear(in_features, out_features)`` over the last dimension.

    Args:
        in_features: student channels ``C_s`` (e.g. query embedding width).
        out_features: teacher channels ``C_t``.
        bias: whether the projection has a bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"LinearAdapter needs positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features = in_features
        self.out_features = out_features
        self.proj = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., C_s)`` → ``(..., C_t)``, e.g. queries ``(B, Q, C_s)`` → ``(B, Q, C_t)``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"LinearAdapter expects (..., {self.in_features}), got {tuple(x.shape)}")
        return self.proj(x)
