"""Misc helpers: inverse sigmoid, memory refresh, gathers, pose transforms, cell centres."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.models.utils.misc import (
    inverse_sigmoid,
    locations,
    memory_refresh,
    topk_gather,
    transform_reference_points,
)


def test_inverse_sigmoid():
    x = torch.linspace(-4, 4, 9)
    assert torch.allclose(inverse_sigmoid(x.sigmoid()), x, atol=1e-4)
    edges = inverse_sigmoid(torch.tensor([0.0, 1.0, -0.5]))
    assert torch.isfinite(edges).all()
    assert edges[0].item() == pytest.approx(math.log(1e-5), rel=1e-4)


def test_memory_refresh_zeroes_new_scenes():
    memory = torch.ones(3, 4, 2)
    memory[1, 0, 0] = float("nan")
    out = memory_refresh(memory, torch.tensor([True, False, True]))
    assert torch.equal(out[1], torch.zeros(4, 2))
    assert torch.equal(out[0], memory[0]) and torch.equal(out[2], memory[2])
    timestamps = torch.tensor([5.0, 6.0], dtype=torch.float64)
    refreshed = memory_refresh(timestamps, torch.tensor([0.0, 1.0]))
    assert refreshed.dtype == torch.float64 and refreshed.tolist() == [0.0, 6.0]
    with pytest.raises(ValueError, match="batch size"):
        memory_refresh(memory, torch.tensor([True]))


def test_topk_gather():
    feat = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    index = torch.tensor([[[4], [0]], [[1], [1]]])
    out = topk_gather(feat, index)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0], feat[0, [4, 0]]) and torch.equal(out[1], feat[1, [1, 1]])
    assert topk_gather(feat, None) is feat
    assert topk_gather(torch.rand(2, 5, 4, 4), index).shape == (2, 2, 4, 4)


def _pose() -> torch.Tensor:
    """Rotation by +90 deg about z, then translation (1, 2, 3)."""
    pose = torch.eye(4)
    pose[:2, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    pose[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    return pose[None]


def test_transform_reference_points_known_pose_and_inverse():
    points = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]])
    pose = _pose()
    moved = transform_reference_points(points, pose)
    assert torch.allclose(moved, torch.tensor([[[1.0, 3.0, 3.0], [-1.0, 2.0, 4.0]]]))
    back = transform_reference_points(moved, pose, reverse=True)
    assert torch.allclose(back, points, atol=1e-6)
    rotated = transform_reference_points(points, pose, translation=False)
    assert torch.allclose(rotated, torch.tensor([[[0.0, 1.0, 0.0], [-2.0, 0.0, 1.0]]]))
    assert torch.equal(pose, _pose())  # the pose is not modified


def test_transform_reference_points_batch_uses_own_pose():
    poses = torch.cat([_pose(), torch.eye(4)[None]])
    points = torch.ones(2, 3, 3)
    out = transform_reference_points(points, poses)
    assert torch.allclose(out[1], points[1])
    assert torch.allclose(out[0], torch.tensor([0.0, 3.0, 4.0]).expand(3, 3))


def test_locations():
    grid = locations(torch.zeros(6, 4, 2, 3), stride=16, pad_h=32, pad_w=48)
    assert grid.shape == (2, 3, 2)
    assert grid[..., 0][0].tolist() == pytest.approx([8 / 48, 24 / 48, 40 / 48])
    assert grid[..., 1][:, 0].tolist() == pytest.approx([8 / 32, 24 / 32])
