"""Behaviour of the temporal memory queue: reset, ego-motion alignment, ageing, pushing."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.models.temporal.memory_queue import MemoryQueue


def _pose(yaw: float, tx: float, ty: float) -> torch.Tensor:
    """A LiDAR -> global pose (rotation about z and a translation)."""
    pose = torch.eye(4)
    pose[:2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    pose[:3, 3] = torch.tensor([tx, ty, 0.5])
    return pose


def _frame(queue: MemoryQueue, poses: list[torch.Tensor], time: float, prev: list[bool],
           pseudo: torch.Tensor | None = None) -> None:
    ego_pose = torch.stack(poses)
    queue.pre_update(torch.tensor(prev), torch.full((len(poses),), time, dtype=torch.float64),
                     torch.linalg.inv(ego_pose), pseudo)


def test_empty_queue_starts_with_pseudo_points_and_identity_poses() -> None:
    queue = MemoryQueue(memory_len=6, embed_dims=4)
    pseudo = torch.rand(2, 3)
    _frame(queue, [_pose(0.3, 1, 2)] * 2, 10.0, [True, True], pseudo)  # empty: reset anyway
    assert queue.embedding.shape == (2, 6, 4) and queue.timestamp.dtype == torch.float64
    assert torch.allclose(queue.reference_point[:, :2], pseudo.expand(2, 2, 3))
    assert torch.equal(queue.reference_point[:, 2:], torch.zeros(2, 4, 3))
    assert torch.equal(queue.egopose[:, :2], torch.eye(4).expand(2, 2, 4, 4))
    assert torch.equal(queue.embedding, torch.zeros(2, 6, 4))


def test_stored_points_keep_their_global_position_across_ego_motion() -> None:
    queue = MemoryQueue(memory_len=4, embed_dims=4)
    pose_a, pose_b = _pose(0.2, 5.0, -3.0), _pose(-0.4, 7.0, 1.0)
    _frame(queue, [pose_a], 100.0, [False])
    point_a = torch.tensor([[[3.0, -2.0, 1.0], [10.0, 4.0, -1.0]]])
    queue.push(torch.randn(1, 2, 4), point_a, torch.randn(1, 2, 2), pose_a[None],
               torch.tensor([100.0], dtype=torch.float64))
    _frame(queue, [pose_b], 100.5, [True])
    point_b = queue.reference_point[:, :2]
    to_global = lambda pose, p: (pose[:3, :3] @ p[0].T).T + pose[:3, 3]  # noqa: E731
    assert torch.allclose(to_global(pose_b, point_b), to_global(pose_a, point_a), atol=1e-4)
    assert torch.allclose(queue.egopose[0, 0], torch.linalg.inv(pose_b) @ pose_a, atol=1e-5)
    assert queue.timestamp[0, :2, 0].tolist() == pytest.approx([0.5, 0.5])


def test_prev_exists_false_clears_only_that_slot() -> None:
    queue = MemoryQueue(memory_len=4, embed_dims=3)
    poses = [torch.eye(4), torch.eye(4)]
    _frame(queue, poses, 0.0, [False, False])
    queue.push(torch.ones(2, 2, 3), torch.ones(2, 2, 3), torch.ones(2, 2, 2), torch.stack(poses),
               torch.zeros(2, dtype=torch.float64))
    pseudo = torch.full((1, 3), 7.0)
    _frame(queue, poses, 1.0, [True, False], pseudo)
    assert torch.equal(queue.embedding[0, :2], torch.ones(2, 3))
    assert torch.equal(queue.embedding[1], torch.zeros(4, 3))
    assert torch.equal(queue.reference_point[1, 0], pseudo[0])
    assert torch.equal(queue.reference_point[0, 0], torch.ones(3))
    assert queue.timestamp[1].abs().sum() == 0 and queue.timestamp[0, 0, 0] == 1.0


def test_push_prepends_newest_truncates_and_detaches() -> None:
    queue = MemoryQueue(memory_len=3, embed_dims=2)
    _frame(queue, [torch.eye(4)], 0.0, [False])
    for step in range(2):
        emb = torch.full((1, 2, 2), float(step + 1), requires_grad=True)
        queue.push(emb * 1.0, torch.zeros(1, 2, 3), torch.zeros(1, 2, 2), torch.eye(4)[None],
                   torch.tensor([float(step)], dtype=torch.float64))
        _frame(queue, [torch.eye(4)], float(step + 1), [True])
    assert queue.embedding.shape == (1, 3, 2)
    assert queue.embedding[0, :, 0].tolist() == [2.0, 2.0, 1.0]
    assert not queue.embedding.requires_grad


def test_reset_and_batch_size_change_start_afresh() -> None:
    queue = MemoryQueue(memory_len=2, embed_dims=2)
    _frame(queue, [torch.eye(4)], 0.0, [False])
    queue.push(torch.ones(1, 1, 2), torch.ones(1, 1, 3), torch.ones(1, 1, 2), torch.eye(4)[None],
               torch.zeros(1, dtype=torch.float64))
    queue.reset()
    assert queue.is_empty
    with pytest.raises(RuntimeError, match="before pre_update"):
        queue.push(torch.ones(1, 1, 2), torch.ones(1, 1, 3), torch.ones(1, 1, 2),
                   torch.eye(4)[None], torch.zeros(1, dtype=torch.float64))
    _frame(queue, [torch.eye(4)] * 3, 1.0, [True] * 3)
    assert queue.embedding.shape == (3, 2, 2) and queue.embedding.abs().sum() == 0
    with pytest.raises(ValueError, match="positive"):
        MemoryQueue(memory_len=0, embed_dims=2)


def test_state_round_trip_and_discovery_by_name():
    from torch import nn

    from projects.mmdet3d_plugin.models.temporal.memory_queue import MemoryQueue, find_memory_queues

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.memory = MemoryQueue(memory_len=4, embed_dims=3)

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.teacher = Head()
            self.student = Head()

    wrapper = Wrapper()
    queues = find_memory_queues(wrapper)
    assert sorted(queues) == ["student.memory", "teacher.memory"]
    queue = queues["student.memory"]
    assert queue.state() == {}
    queue._allocate(2, torch.device("cpu"))
    queue.embedding.normal_()
    saved = queue.state()
    queue.embedding.zero_()
    other = MemoryQueue(memory_len=4, embed_dims=3)
    other.load_state(saved)
    assert torch.equal(other.embedding, saved["embedding"]) and other.timestamp.dtype == torch.float64
    other.load_state({})
    assert other.is_empty
    with pytest.raises(KeyError, match="velo"):
        other.load_state({k: v for k, v in saved.items() if k != "velo"})
