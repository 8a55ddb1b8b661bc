"""Sinusoidal encodings of normalised positions and of motion vectors.

The channel layout matches StreamPETR's exactly (published query-embedding weights depend
on it): for each axis the frequencies are ``temperature ** (2 * (i // 2) / num_pos_feats)``,
even channels carry ``sin`` and odd channels ``cos`` of the same frequency, and the 3D
encoding concatenates the axes in the order **y, x, z**.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def _sine_embed(coord: Tensor, num_pos_feats: int, temperature: float) -> Tensor:
    """Encode one coordinate ``(...,)`` as ``(..., num_pos_feats)`` interleaved sin/cos."""
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=coord.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_pos_feats)
    angles = coord[..., None] * (2 * math.pi) / dim_t
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


def pos2posemb3d(pos: Tensor, num_pos_feats: int = 128, temperature: float = 10000) -> Tensor:
    """Sinusoidal encoding of normalised 3D points.

    Args:
        pos: ``(..., 3)`` points, usually in ``[0, 1]``.
        num_pos_feats: channels per axis (even).
        temperature: base of the frequency progression.

    Returns:
        ``(..., 3 * num_pos_feats)``: encodings of y, then x, then z.
    """
    if pos.shape[-1] != 3:
        raise ValueError(f"pos2posemb3d expects (..., 3) points, got shape {tuple(pos.shape)}")
    emb_x = _sine_embed(pos[..., 0], num_pos_feats, temperature)
    emb_y = _sine_embed(pos[..., 1], num_pos_feats, temperature)
    emb_z = _sine_embed(pos[..., 2], num_pos_feats, temperature)
    return torch.cat((emb_y, emb_x, emb_z), dim=-1)


def pos2posemb1d(pos: Tensor, num_pos_feats: int = 256, temperature: float = 10000) -> Tensor:
    """Sinusoidal encoding of a scalar (e.g. a time difference or a depth).

    Args:
        pos: ``(..., 1)``; only the first entry of the last dimension is encoded.
        num_pos_feats: output channels (even).
        temperature: base of the frequency progression.

    Returns:
        ``(..., num_pos_feats)``.
    """
    return _sine_embed(pos[..., 0], num_pos_feats, temperature)


def nerf_positional_encoding(
    tensor: Tensor,
    num_encoding_functions: int = 6,
    include_input: bool = False,
    log_sampling: bool = True,
) -> Tensor:
    """NeRF-style encoding ``[x, sin(f_1 x), cos(f_1 x), ..., sin(f_K x), cos(f_K x)]``.

    The default ``include_input=False`` is StreamPETR's: its temporal MLN is built for
    ``15 * 12 = 180`` input channels (velocity 2 + time 1 + pose 12, six frequencies).

    Args:
        tensor: ``(..., D)``.
        num_encoding_functions: number of frequencies ``K``.
        include_input: prepend the raw input.
        log_sampling: frequencies ``2 ** linspace(0, K - 1, K)``; otherwise
            ``linspace(1, 2 ** (K - 1), K)``.

    Returns:
        ``(..., D * (2 * K + int(include_input)))``; blocks ordered by frequency, each block
        ``sin`` then ``cos`` over all ``D`` channels.
    """
    num = num_encoding_functions
    if log_sampling:
        bands = 2.0 ** torch.linspace(0.0, num - 1, num, dtype=tensor.dtype, device=tensor.device)
    else:
        bands = torch.linspace(1.0, 2.0 ** (num - 1), num, dtype=tensor.dtype, device=tensor.device)
    encoding = [tensor] if include_input else []
    for freq in bands:
        encoding.append(torch.sin(tensor * freq))
        encoding.append(torch.cos(tensor * freq))
    if not encoding:
        raise ValueError("nerf_positional_encoding: no frequencies and include_input=False")
    return torch.cat(encoding, dim=-1)
