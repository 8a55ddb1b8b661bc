"""FGDLoss: exact terms on constant features, minimum, attention, gradients, shapes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from projects.mmdet3d_plugin.kd.losses.fgd import FGDLoss, spatial_channel_attention
from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import cameras

IMAGE = (80, 100)
FEAT = (8, 10)


def _lidar2img() -> torch.Tensor:
    """(1, 2, 4, 4): two pinhole cameras at the origin, looking along +x and along -x."""
    return cameras([0.0, math.pi], IMAGE, focal=100.0)[0][None]


# A 2 m cube 10 m ahead: 16 foreground cells in camera 0, nothing in camera 1.
GT = [torch.tensor([[10.0, 0, 0, 2, 2, 2, 0, 0, 0]])]


def _batch() -> dict:
    return dict(gt_bboxes_3d=GT, lidar2img=_lidar2img(), pad_shape=[IMAGE])


def _only(term: str, channels: int = 3) -> FGDLoss:
    weights = dict(alpha_fgd=0.0, beta_fgd=0.0, gamma_fgd=0.0, lambda_fgd=0.0)
    weights[term] = 1.0
    return FGDLoss(channels=channels, **weights)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        # Constant maps: all attentions are 1, error d^2 = 0.25 per element, C = 3.
        ("alpha_fgd", 0.25 * 3 * 1.0 / 2),  # camera 0's fg weights sum to 1, over N = 2
        ("beta_fgd", 0.25 * 3 * 2.0 / 2),  # both cameras' bg weights sum to 1
        ("gamma_fgd", 0.0),  # same (uniform) attention maps
        ("lambda_fgd", 0.25 * 3 * 80),  # zero-initialised context: G(F) = F
    ],
)
def test_terms_on_constant_maps(term: str, expected: float) -> None:
    student, teacher = torch.full((2, 3, *FEAT), 1.5), torch.ones(2, 3, *FEAT)
    assert _only(term)(student, teacher, **_batch()).item() == pytest.approx(expected, rel=1e-5)


def test_weights_combine_linearly() -> None:
    student, teacher = torch.randn(2, 3, *FEAT), torch.randn(2, 3, *FEAT)
    full = FGDLoss(channels=3, alpha_fgd=1.0, beta_fgd=2.0, gamma_fgd=3.0, lambda_fgd=4.0, loss_weight=0.5)
    parts = {term: _only(term) for term in ("alpha_fgd", "beta_fgd", "gamma_fgd", "lambda_fgd")}
    for part in parts.values():
        part.load_state_dict(full.state_dict())
    values = [parts[term](student, teacher, **_batch()) for term in parts]
    expected = 0.5 * (values[0] + 2 * values[1] + 3 * values[2] + 4 * values[3])
    torch.testing.assert_close(full(student, teacher, **_batch()), expected)


def test_attention_maps() -> None:
    features = torch.randn(2, 3, 4, 5)
    spatial, channel = spatial_channel_attention(features, 0.5)
    assert spatial.shape == (2, 4, 5) and channel.shape == (2, 3)
    torch.testing.assert_close(spatial.sum(dim=(1, 2)), torch.full((2,), 20.0))
    torch.testing.assert_close(channel.sum(dim=1), torch.full((2,), 3.0))
    expected = 20 * torch.softmax(features.abs().mean(1).view(2, -1) / 0.5, dim=1).view(2, 4, 5)
    torch.testing.assert_close(spatial, expected)


def test_identical_features_and_context_modules_give_zero() -> None:
    loss = FGDLoss(channels=3, alpha_fgd=1.0, beta_fgd=1.0, gamma_fgd=1.0, lambda_fgd=1.0)
    with torch.no_grad():
        for param in loss.student_context.parameters():
            param.normal_()
    loss.teacher_context.load_state_dict(loss.student_context.state_dict())
    features = torch.randn(2, 3, *FEAT)
    assert loss(features, features.clone(), **_batch()).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(features, torch.randn(2, 3, *FEAT), **_batch()).item() > 1e-3


def test_gradient_to_student_and_context_modules_not_teacher() -> None:
    loss = FGDLoss(channels=4)  # bottleneck of 2: LayerNorm over one channel would be constant
    student = torch.randn(2, 4, *FEAT, requires_grad=True)
    teacher = torch.randn(2, 4, *FEAT, requires_grad=True)
    value = loss(student, teacher, **_batch())
    assert value.item() > 0
    value.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    assert loss.student_context.transform[-1].weight.grad.abs().sum() > 0
    assert loss.teacher_context.transform[-1].weight.grad.abs().sum() > 0


def test_teacher_is_resized_and_masks_follow_student_size() -> None:
    loss = FGDLoss(channels=3)
    student, teacher = torch.randn(2, 3, *FEAT), torch.randn(2, 3, 16, 20)
    resized = F.interpolate(teacher, size=FEAT, mode="bilinear", align_corners=False)
    torch.testing.assert_close(loss(student, teacher, **_batch()), loss(student, resized, **_batch()))


def test_shape_errors() -> None:
    loss = FGDLoss(channels=3)
    with pytest.raises(ValueError, match=r"FGDLoss.*\(2, 3, 8, 10\).*\(2, 4, 8, 10\)"):
        loss(torch.zeros(2, 3, *FEAT), torch.zeros(2, 4, *FEAT), **_batch())
    with pytest.raises(ValueError, match="channels=3"):
        loss(torch.zeros(2, 4, *FEAT), torch.zeros(2, 4, *FEAT), **_batch())
    with pytest.raises(ValueError, match=r"B\*N feature maps"):
        loss(torch.zeros(3, 3, *FEAT), torch.zeros(3, 3, *FEAT), **_batch())


def test_built_from_config_and_context_modules_in_state_dict() -> None:
    loss = MODELS.build(dict(type="FGDLoss", channels=8, alpha_fgd=1.5e-3, beta_fgd=4e-2))
    assert (loss.alpha_fgd, loss.beta_fgd, loss.gamma_fgd, loss.lambda_fgd) == (1.5e-3, 4e-2, 1e-3, 5e-6)
    prefixes = {key.split(".")[0] for key in loss.state_dict()}
    assert prefixes == {"student_context", "teacher_context"}
