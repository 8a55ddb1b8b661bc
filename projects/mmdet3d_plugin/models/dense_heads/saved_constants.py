"""Constants that published query-head checkpoints carry, and the check made on loading.

StreamPETR / RayDN save a few configuration-derived tensors next to the weights
(``code_weights``, ``match_costs``, ``pc_range``, ``position_range``, ``coords_d``) and one
fixed random tensor (``pseudo_reference_points.weight``). Here they are persistent buffers:
they load from a checkpoint and are never trained or handed to an optimiser. A loaded
config-derived constant must equal the configured one, otherwise the model and the
checkpoint disagree about the setup and loading fails, naming the key.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_DIM


class FixedEmbedding(nn.Module):
    """A non-trainable ``(num, dims)`` table stored as the buffer ``weight``.

    It replaces an ``nn.Embedding`` whose weight upstream froze (``requires_grad=False``),
    so the checkpoint key ``<name>.weight`` is kept. Initialised uniform in ``[0, 1]``.
    """

    def __init__(self, num: int, dims: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.rand(num, dims))


def code_weight_constants(code_weights: Optional[Sequence[float]],
                          match_costs: Optional[Sequence[float]]) -> dict[str, Tensor]:
    """``code_weights`` (default upstream's, velocity 0.2) and ``match_costs`` (default
    ``code_weights``) as ``(10,)`` tensors; wrong lengths raise."""
    code_weights = [1.0] * 8 + [0.2, 0.2] if code_weights is None else list(code_weights)
    match_costs = code_weights if match_costs is None else list(match_costs)
    for name, values in (("code_weights", code_weights), ("match_costs", match_costs)):
        if len(values) != CODE_DIM:
            raise ValueError(f"{name} needs {CODE_DIM} values, got {values}")
    return dict(code_weights=torch.tensor(code_weights, dtype=torch.float32),
                match_costs=torch.tensor(match_costs, dtype=torch.float32))


def register_constants(module: nn.Module, constants: Mapping[str, Tensor]) -> tuple[str, ...]:
    """Register ``constants`` as persistent buffers of ``module`` (in order); their names,
    for :func:`check_loaded_constants`."""
    for name, value in constants.items():
        module.register_buffer(name, value)
    return tuple(constants)


def check_loaded_constants(
    module: nn.Module, state_dict: Mapping[str, Tensor], prefix: str, names: Sequence[str]
) -> None:
    """Raise when a checkpoint constant differs from the module's configured buffer.

    Args:
        module: the module owning buffers ``names``.
        state_dict: the (full) state dict being loaded.
        prefix: the module's key prefix in ``state_dict``.
        names: buffer names to compare; absent keys are left to ``strict`` loading.
    """
    for name in names:
        key = prefix + name
        if key not in state_dict:
            continue
        loaded, configured = state_dict[key], getattr(module, name)
        same = loaded.shape == configured.shape and torch.allclose(
            loaded.detach().float().cpu(), configured.detach().float().cpu(), rtol=1e-5, atol=1e-6
        )
        if not same:
            raise ValueError(
                f"checkpoint constant '{key}' = {loaded.tolist()} differs from the value the "
                f"config gives, {configured.tolist()}; fix the config (or the checkpoint) so "
                "that both describe the same setup"
            )
