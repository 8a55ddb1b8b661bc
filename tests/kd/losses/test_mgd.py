"""MGDLoss: exact value without masking, mask ratio, training, gradients, shapes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from projects.mmdet3d_plugin.kd.losses.mgd import MGDLoss
from projects.mmdet3d_plugin.registry import MODELS


def _identity_generation(loss: MGDLoss) -> None:
    """Set the generation block to the identity on non-negative inputs."""
    channels = loss.channels
    with torch.no_grad():
        for conv in (loss.generation[0], loss.generation[2]):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[torch.arange(channels), torch.arange(channels), 1, 1] = 1.0


def test_value_without_masking_and_identity_generator() -> None:
    loss = MGDLoss(channels=3, alpha_mgd=0.5, lambda_mgd=0.0, loss_weight=2.0)
    _identity_generation(loss)
    student, teacher = torch.rand(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    expected = 2.0 * 0.5 * ((student - teacher) ** 2).sum() / 2
    torch.testing.assert_close(loss(student, teacher), expected)
    assert loss(student, student.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_mask_drops_the_configured_fraction() -> None:
    torch.manual_seed(0)
    mask = MGDLoss(channels=2, lambda_mgd=0.65).random_keep_mask(torch.zeros(2, 2, 100, 100))
    assert mask.shape == (2, 1, 100, 100)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (1.0 - mask.mean().item()) == pytest.approx(0.65, abs=0.02)


def test_seeded_value_is_reproducible() -> None:
    loss = MGDLoss(channels=2)
    student, teacher = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)
    torch.manual_seed(3)
    first = loss(student, teacher)
    torch.manual_seed(3)
    torch.testing.assert_close(loss(student, teacher), first)


def test_training_the_generator_on_identical_features_lowers_the_loss() -> None:
    torch.manual_seed(0)
    loss = MGDLoss(channels=4, alpha_mgd=1.0, lambda_mgd=0.5)
    features = torch.randn(2, 4, 6, 6)
    optimiser = torch.optim.Adam(loss.parameters(), lr=1e-2)

    def evaluate() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return loss(features, features).item()

    before = evaluate()
    for _ in range(60):
        optimiser.zero_grad()
        loss(features, features).backward()
        optimiser.step()
    after = evaluate()
    assert before > 0
    assert after < 0.5 * before


def test_positive_and_gradient_to_student_and_generator_only() -> None:
    loss = MGDLoss(channels=3)
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4, 4, requires_grad=True)
    torch.manual_seed(1)
    value = loss(student, teacher)
    assert value.item() > 0
    value.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    assert loss.generation[2].weight.grad.abs().sum() > 0


def test_teacher_is_resized_to_student() -> None:
    loss = MGDLoss(channels=2)
    student, teacher = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 6, 8)
    resized = F.interpolate(teacher, size=(3, 4), mode="bilinear", align_corners=False)
    torch.manual_seed(5)
    first = loss(student, teacher)
    torch.manual_seed(5)
    torch.testing.assert_close(first, loss(student, resized))


def test_shape_and_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"MGDLoss.*\(1, 2, 3, 3\).*\(1, 4, 3, 3\)"):
        MGDLoss(channels=2)(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 3, 3))
    with pytest.raises(ValueError, match="channels=2"):
        MGDLoss(channels=2)(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3))
    with pytest.raises(ValueError, match="lambda_mgd"):
        MGDLoss(channels=2, lambda_mgd=1.0)


def test_built_from_config_and_generator_in_state_dict() -> None:
    loss = MODELS.build(dict(type="MGDLoss", channels=8, alpha_mgd=2e-5, lambda_mgd=0.65))
    assert set(loss.state_dict()) == {
        "generation.0.weight", "generation.0.bias", "generation.2.weight", "generation.2.bias"
    }
