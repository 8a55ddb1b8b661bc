"""Per-layer classification / regression branches of DETR-style 3D query heads.

StreamPETR and RayDN build one branch module and put the same object in a ``ModuleList``
once per decoder layer, so the branches are shared (tied) across layers and a state dict
holds ``num_layers`` identical copies (``cls_branches.{i}.*``). Loading must accept the
copies, and must refuse copies that differ: they cannot all be loaded into one module.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn


def build_cls_branch(embed_dims: int, num_classes: int, num_fcs: int = 2) -> nn.Sequential:
    """``num_fcs x (Linear, LayerNorm, ReLU)`` then ``Linear(num_classes)``.

    The last bias starts at the logit of probability 0.01 (focal-loss prior).
    """
    layers: list[nn.Module] = []
    for _ in range(num_fcs):
        layers += [nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(embed_dims, num_classes))
    nn.init.constant_(layers[-1].bias, -math.log((1 - 0.01) / 0.01))
    return nn.Sequential(*layers)


def build_reg_branch(embed_dims: int, code_size: int, num_fcs: int = 2) -> nn.Sequential:
    """``num_fcs x (Linear, ReLU)`` then ``Linear(code_size)``."""
    layers: list[nn.Module] = []
    for _ in range(num_fcs):
        layers += [nn.Linear(embed_dims, embed_dims), nn.ReLU()]
    layers.append(nn.Linear(embed_dims, code_size))
    return nn.Sequential(*layers)


def check_tied_copies(
    state_dict: Mapping[str, Tensor], prefix: str, names: Sequence[str], num_copies: int
) -> None:
    """Raise when the saved copies of a tied ``ModuleList`` differ.

    Args:
        state_dict: the state dict being loaded.
        prefix: key prefix of the module owning the lists (e.g. ``'pts_bbox_head.'``).
        names: the tied lists, e.g. ``('cls_branches', 'reg_branches')``.
        num_copies: entries of each list.
    """
    for name in names:
        first = f"{prefix}{name}.0."
        for key in (k for k in state_dict if k.startswith(first)):
            suffix = key[len(first):]
            for index in range(1, num_copies):
                other = f"{prefix}{name}.{index}.{suffix}"
                if other in state_dict and not torch.equal(state_dict[key], state_dict[other]):
                    raise ValueError(
                        f"checkpoint holds different '{name}' copies: '{other}' differs from "
                        f"'{key}'. The branches are one module shared by all "
                        f"{num_copies} decoder layers, so all copies must be identical"
                    )
