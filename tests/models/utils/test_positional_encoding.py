"""Positional encodings: shapes, StreamPETR channel layout (y, x, z; sin/cos interleave)."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.models.utils.positional_encoding import (
    nerf_positional_encoding,
    pos2posemb1d,
    pos2posemb3d,
)


def test_pos2posemb3d_shape_and_axis_order():
    pos = torch.tensor([[0.1, 0.2, 0.3]])
    emb = pos2posemb3d(pos, num_pos_feats=8)
    assert emb.shape == (1, 24)
    freq1 = 10000 ** (2 / 8)  # frequency of channels 2 and 3
    for block, coord in enumerate((0.2, 0.1, 0.3)):  # y, then x, then z
        chunk = emb[0, block * 8 : (block + 1) * 8]
        angle = 2 * math.pi * coord
        assert chunk[0].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert chunk[1].item() == pytest.approx(math.cos(angle), abs=1e-6)
        assert chunk[2].item() == pytest.approx(math.sin(angle / freq1), abs=1e-6)
        assert chunk[3].item() == pytest.approx(math.cos(angle / freq1), abs=1e-6)


def test_pos2posemb3d_default_width_and_batch_dims():
    emb = pos2posemb3d(torch.rand(2, 7, 3))
    assert emb.shape == (2, 7, 384)
    with pytest.raises(ValueError, match="pos2posemb3d"):
        pos2posemb3d(torch.rand(4, 2))


def test_pos2posemb1d_values():
    emb = pos2posemb1d(torch.tensor([[0.25]]), num_pos_feats=4)
    freq1 = 10000 ** (2 / 4)
    angle = 2 * math.pi * 0.25
    expected = [math.sin(angle), math.cos(angle), math.sin(angle / freq1), math.cos(angle / freq1)]
    assert emb.shape == (1, 4)
    assert emb[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert pos2posemb1d(torch.rand(3, 5, 1)).shape == (3, 5, 256)


def test_nerf_encoding_layout():
    x = torch.tensor([[0.5, -1.0]])
    enc = nerf_positional_encoding(x, num_encoding_functions=2, include_input=True)
    expected = torch.cat([x, x.sin(), x.cos(), (2 * x).sin(), (2 * x).cos()], dim=-1)
    assert enc.shape == (1, 10)
    assert torch.allclose(enc, expected)


def test_nerf_default_matches_streampetr_motion_width():
    motion = torch.rand(2, 428, 15)  # velocity 2 + time 1 + pose 12
    assert nerf_positional_encoding(motion).shape == (2, 428, 180)


def test_nerf_linear_sampling():
    x = torch.tensor([[1.0]])
    enc = nerf_positional_encoding(x, num_encoding_functions=3, log_sampling=False)
    freqs = [1.0, 2.5, 4.0]
    expected = [f(v) for v in freqs for f in (math.sin, math.cos)]
    assert enc[0].tolist() == pytest.approx(expected, abs=1e-6)
