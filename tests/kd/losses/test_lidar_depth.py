"""LidarDepthLoss: depth head on a student level, cross-entropy against LiDAR depth-bin labels."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.kd.losses.lidar_depth import LidarDepthLoss
from projects.mmdet3d_plugin.registry import MODELS


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread (two threads on busy cores spend seconds waiting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def depth_target(b: int = 1, n: int = 2, h: int = 4, w: int = 6, seed: int = 0) -> torch.Tensor:
    """``(b, n, h, w)`` depths in [2, 40) m with about a third of the cells empty (0)."""
    gen = torch.Generator().manual_seed(seed)
    depth = torch.rand(b, n, h, w, generator=gen) * 38 + 2
    return depth * (torch.rand(b, n, h, w, generator=gen) > 0.33)


def test_builds_from_the_registry_and_gives_a_scalar() -> None:
    loss = MODELS.build(dict(type="LidarDepthLoss", in_channels=8, depth_range=(1.0, 41.0), num_bins=20))
    student = torch.randn(2, 8, 4, 6, requires_grad=True)
    value = loss(student, depth_target())
    assert value.shape == () and value > 0
    value.backward()
    assert student.grad is not None and loss.head[0].weight.grad is not None
    assert loss.predict_depth(student).shape == (2, 4, 6)
    assert set(loss.state_dict()) == {  # bins are constants, not checkpoint entries
        "head.0.weight", "head.1.weight", "head.1.bias", "head.1.running_mean", "head.1.running_var",
        "head.1.num_batches_tracked", "head.3.weight", "head.3.bias"}


@pytest.mark.parametrize("label_type", ["gaussian", "one_hot"])
def test_the_minimum_is_the_label_entropy_reached_at_the_labels(label_type: str) -> None:
    loss = LidarDepthLoss(in_channels=4, depth_range=(1.0, 41.0), num_bins=40, label_type=label_type,
                          sigma=2.0, loss_weight=1.0)
    depth = depth_target()[0]
    valid = depth > 0
    labels = loss.depth_labels(depth[valid])
    entropy = -torch.xlogy(labels, labels).sum(-1).mean()
    random_logits = torch.randn(2, 40, 4, 6)
    assert loss.loss_from_logits(random_logits, depth) - entropy > 0.1  # the KL divergence
    exact = torch.full((2, 4, 6, 40), -1e4)
    exact[valid] = labels.clamp_min(1e-30).log()
    assert loss.loss_from_logits(exact.permute(0, 3, 1, 2), depth) == pytest.approx(entropy.item(), abs=1e-4)


def test_the_loss_weight_scales_and_empty_cells_are_ignored() -> None:
    torch.manual_seed(0)
    loss = LidarDepthLoss(in_channels=4, depth_range=(1.0, 41.0), num_bins=20)
    logits, depth = torch.randn(2, 20, 4, 6), depth_target()[0]
    full = loss.loss_from_logits(logits, depth)
    loss.loss_weight = 0.5
    assert loss.loss_from_logits(logits, depth) == pytest.approx(0.5 * full.item())
    out_of_range = torch.where(depth > 0, depth, torch.full_like(depth, 99.0))
    assert loss.loss_from_logits(logits, out_of_range) == pytest.approx(0.5 * full.item())


def test_no_valid_cell_gives_a_zero_that_keeps_the_graph() -> None:
    loss = LidarDepthLoss(in_channels=4, depth_range=(1.0, 41.0), num_bins=20)
    student = torch.randn(2, 4, 4, 6, requires_grad=True)
    value = loss(student, torch.zeros(1, 2, 4, 6))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert loss.head[3].weight.grad is not None and torch.equal(loss.head[3].weight.grad,
                                                                torch.zeros_like(loss.head[3].weight))


def test_a_finer_depth_map_is_min_pooled_to_the_feature_size() -> None:
    loss = LidarDepthLoss(in_channels=4, depth_range=(1.0, 41.0), num_bins=20)
    student, coarse = torch.randn(2, 4, 2, 3), torch.zeros(1, 2, 2, 3)
    coarse[0, 0, 1, 2] = 7.0
    fine = torch.zeros(1, 2, 4, 6)
    fine[0, 0, 3, 5], fine[0, 0, 2, 4] = 7.0, 30.0
    assert loss(student, fine).item() == pytest.approx(loss(student, coarse).item())


def test_bad_inputs_and_options_are_named() -> None:
    loss = LidarDepthLoss(in_channels=4)
    with pytest.raises(ValueError, match="in_channels"):
        loss(torch.randn(2, 8, 4, 6), depth_target())
    with pytest.raises(ValueError, match=r"depth_maps must be \(B, N, h, w\)"):
        loss(torch.randn(2, 4, 4, 6), depth_target()[0])
    with pytest.raises(ValueError, match="B\\*N = 3 camera images"):
        loss(torch.randn(2, 4, 4, 6), depth_target(n=3))
    with pytest.raises(ValueError, match="label_type"):
        LidarDepthLoss(in_channels=4, label_type="soft")
    with pytest.raises(ValueError, match="depth_range"):
        LidarDepthLoss(in_channels=4, depth_range=(10.0, 2.0))
    with pytest.raises(ValueError, match="sigma"):
        LidarDepthLoss(in_channels=4, sigma=0.0)


def test_training_the_head_and_a_feature_map_fits_the_depth(one_thread: None) -> None:
    torch.manual_seed(0)
    loss = LidarDepthLoss(in_channels=8, depth_range=(1.0, 41.0), num_bins=20, sigma=2.0, mid_channels=16)
    features = torch.nn.Parameter(torch.randn(2, 8, 4, 6))
    target = depth_target()
    optim = torch.optim.Adam([features, *loss.parameters()], lr=0.05)
    first = loss(features, target).item()
    for _ in range(60):
        optim.zero_grad()
        value = loss(features, target)
        value.backward()
        optim.step()
    assert value.item() < 0.5 * first
    loss.eval()
    valid = target[0] > 0
    error = (loss.predict_depth(features)[valid] - target[0][valid]).abs().mean()
    assert error < 1.0, f"mean depth error {error:.2f} m"
