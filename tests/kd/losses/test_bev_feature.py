"""BEVFeatureLoss: the feature families on lifted BEV maps, weighted by DistillBEV regions."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.kd.bev.lifting import BEVLifting
from projects.mmdet3d_plugin.kd.losses.bev_feature import BEVFeatureLoss
from projects.mmdet3d_plugin.kd.losses.bkl import BalancedKLLoss
from projects.mmdet3d_plugin.kd.losses.cwd import ChannelWiseDivergence
from projects.mmdet3d_plugin.kd.losses.fg_masks import foreground_background_masks
from projects.mmdet3d_plugin.kd.losses.fgd import FGDLoss
from projects.mmdet3d_plugin.kd.losses.fitnets import FitNetsLoss
from projects.mmdet3d_plugin.kd.losses.region_weights import TN
from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import FRONT_BOXES, IMG_HW, cameras

PC_RANGE = [-32.0, -32.0, -2.0, 32.0, 32.0, 2.0]
BEV = (16, 16)
FEAT = (8, 22)  # stride 8 of the 64 x 176 images
CHANNELS = 4
FAMILIES = {
    "mse": dict(type="FitNetsLoss"),
    "cwd": dict(type="ChannelWiseDivergence", tau=2.0),
    "bkl": dict(type="BalancedKLLoss", tau=2.0, reverse_weight=3.0),
    "fgd": dict(type="FGDLoss", channels=CHANNELS, alpha_fgd=1.0, beta_fgd=1.0, gamma_fgd=1.0,
                lambda_fgd=1.0),
}
PLAIN = {"mse": FitNetsLoss(), "cwd": ChannelWiseDivergence(tau=2.0, loss_weight=1.0),
         "bkl": BalancedKLLoss(tau=2.0, reverse_weight=3.0, loss_weight=1.0)}


def geometry(batch: int = 1) -> dict:
    """Front and back cameras; GT boxes ahead in every sample; a teacher that detects nothing."""
    lidar2img = cameras([0.0, math.pi])[0][None].repeat(batch, 1, 1, 1)
    return dict(lidar2img=lidar2img, pad_shape=[IMG_HW] * batch,
                gt_bboxes_3d=[torch.tensor(FRONT_BOXES)] * batch,
                teacher_cls=torch.full((batch, 5, 10), -10.0), teacher_box=torch.zeros(batch, 5, 10))


def features(batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch * 2, CHANNELS, *FEAT, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_zero_for_identical_maps_and_positive_otherwise(family: str) -> None:
    loss = MODELS.build(dict(type="BEVFeatureLoss", pc_range=PC_RANGE, bev_size=BEV, family=FAMILIES[family],
                             region_weights=dict(tn_weight=0.1)))
    teacher, inputs = features(2), geometry(2)
    assert float(loss(teacher.clone(), teacher, progress=0.5, **inputs).detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(features(2, seed=1), teacher, progress=0.5, **inputs)) > 1e-4


@pytest.mark.parametrize("family", ["mse", "cwd", "bkl"])
def test_uniform_weights_give_the_family_loss_on_the_lifted_maps(family: str) -> None:
    loss = BEVFeatureLoss(PC_RANGE, BEV, family=FAMILIES[family], attention=False, loss_weight=2.0)
    student, teacher, inputs = features(2, 1), features(2), geometry(2)
    lifting = BEVLifting(PC_RANGE, BEV)
    lifted = [lifting(maps, inputs["lidar2img"], inputs["pad_shape"]) for maps in (student, teacher)]
    args = (0.3,) if family == "bkl" else ()
    expected = 2.0 * PLAIN[family](*lifted, *args)
    assert float(loss(student, teacher, inputs["lidar2img"], inputs["pad_shape"], progress=0.3)) == \
        pytest.approx(float(expected), rel=1e-6)


def test_a_teacher_map_of_another_resolution_is_lifted_on_its_own_taps() -> None:
    loss = BEVFeatureLoss(PC_RANGE, BEV, family=FAMILIES["mse"], attention=False)
    teacher = torch.randn(2, CHANNELS, FEAT[0] * 2, FEAT[1] * 2, generator=torch.Generator().manual_seed(3))
    inputs = geometry(1)
    student_bev, teacher_bev, _ = loss.bev_maps(features(1), teacher, inputs["lidar2img"], inputs["pad_shape"])
    lifting = BEVLifting(PC_RANGE, BEV)
    assert torch.allclose(student_bev, lifting(features(1), inputs["lidar2img"], inputs["pad_shape"]))
    assert torch.allclose(teacher_bev, lifting(teacher, inputs["lidar2img"], inputs["pad_shape"]))


@pytest.mark.parametrize("family", ["mse", "cwd", "bkl"])
def test_a_uniform_weight_reproduces_the_family_loss(family: str) -> None:
    student, teacher = torch.randn(3, 4, 5, 6), torch.randn(3, 4, 5, 6)
    args = (0.3,) if family == "bkl" else ()
    plain = PLAIN[family](student, teacher, *args)
    weighted = PLAIN[family].weighted(student, teacher, torch.full((3, 5, 6), 0.25), *args)
    assert float(weighted) == pytest.approx(float(plain), rel=1e-6)


def test_fgd_with_its_projected_masks_is_its_forward() -> None:
    loss, inputs = FGDLoss(CHANNELS), geometry(1)
    student, teacher = features(1, 1), features(1)
    masks = foreground_background_masks(inputs["gt_bboxes_3d"], inputs["lidar2img"], inputs["pad_shape"], FEAT)
    assert float(loss.masked(student, teacher, *masks)) == float(
        loss(student, teacher, inputs["gt_bboxes_3d"], inputs["lidar2img"], inputs["pad_shape"]))


def test_an_error_only_in_tn_cells_is_down_weighted_by_tn_weight() -> None:
    inputs, teacher = geometry(1), features(1)
    student = teacher.clone()
    student[1] += 1.0  # the back camera sees only background: the error lies in TN cells only
    region = BEVFeatureLoss(PC_RANGE, BEV, region_weights=dict(tn_weight=0.1), attention=False)
    uniform = BEVFeatureLoss(PC_RANGE, BEV, region_weights=dict(tn_weight=1.0), attention=False)
    labels = region.region_weights.labels(inputs["gt_bboxes_3d"], inputs["teacher_cls"], inputs["teacher_box"])
    assert bool((labels != TN).any())  # the GT boxes ahead make foreground cells
    mean_weight = float(torch.where(labels == TN, 0.1, 1.0).mean())
    ratio = float(region(student, teacher, **inputs)) / float(uniform(student, teacher, **inputs))
    # the weights have mean 1 per sample: a TN cell weighs 0.1 / mean, against 1 when uniform
    assert ratio == pytest.approx(0.1 / mean_weight, rel=1e-5) and ratio < 1.0


def test_attention_is_the_max_of_teacher_and_student_attention() -> None:
    loss = BEVFeatureLoss(PC_RANGE, BEV, attention_temperature=1.0)
    student_bev, teacher_bev = torch.zeros(1, 2, *BEV), torch.zeros(1, 2, *BEV)
    student_bev[0, :, 2, 3], teacher_bev[0, :, 5, 7] = 3.0, 3.0
    weight = loss.cell_weights(student_bev, teacher_bev, None)
    assert weight.shape == (1, *BEV)
    assert float(weight[0, 2, 3]) == pytest.approx(float(weight[0, 5, 7])) and float(weight[0, 2, 3]) > 10.0


def test_the_gradient_reaches_the_student_only() -> None:
    loss = BEVFeatureLoss(PC_RANGE, BEV, family=FAMILIES["cwd"], region_weights=dict(tn_weight=0.1))
    student = features(1, 1).requires_grad_(True)
    teacher = features(1).requires_grad_(True)
    loss(student, teacher, **geometry(1)).backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0 and teacher.grad is None


def test_bad_configurations_and_inputs_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="family type must be one of .* got 'CWD'"):
        BEVFeatureLoss(PC_RANGE, BEV, family=dict(type="CWD"))
    with pytest.raises(ValueError, match="unknown: \\['tua' \\(did you mean 'tau'\\?\\)\\]"):
        BEVFeatureLoss(PC_RANGE, BEV, family=dict(type="ChannelWiseDivergence", tua=2.0))
    with pytest.raises(ValueError, match="missing: \\['channels'\\]"):
        BEVFeatureLoss(PC_RANGE, BEV, family=dict(type="FGDLoss"))
    with pytest.raises(ValueError, match="may not set \\['loss_weight'\\]"):
        BEVFeatureLoss(PC_RANGE, BEV, family=dict(type="FitNetsLoss", loss_weight=2.0))
    loss, inputs = BEVFeatureLoss(PC_RANGE, BEV, region_weights=dict()), geometry(1)
    with pytest.raises(ValueError, match="different channel counts"):
        loss(features(1), torch.zeros(2, CHANNELS + 1, *FEAT), **inputs)
    with pytest.raises(ValueError, match="must hold B\\*N camera feature maps"):
        loss(features(2), features(2), **inputs)
    with pytest.raises(ValueError, match="with region_weights needs gt_bboxes_3d"):
        loss(features(1), features(1), inputs["lidar2img"], inputs["pad_shape"])


def test_fgd_masks_split_the_region_factors_into_foreground_and_background() -> None:
    loss = BEVFeatureLoss(PC_RANGE, BEV, family=FAMILIES["fgd"], region_weights=dict(tn_weight=0.1))
    inputs = geometry(2)
    labels = loss.region_weights.labels(inputs["gt_bboxes_3d"], inputs["teacher_cls"], inputs["teacher_box"])
    fg_mask, bg_mask = loss.fgd_masks(labels, torch.zeros(2, CHANNELS, *BEV))
    assert torch.allclose(fg_mask.sum(dim=(1, 2)), torch.ones(2))
    assert torch.allclose(bg_mask.sum(dim=(1, 2)), torch.ones(2))
    assert torch.all(fg_mask[labels == TN] == 0) and torch.all(bg_mask[labels != TN] == 0)
    uniform = BEVFeatureLoss(PC_RANGE, BEV, family=FAMILIES["fgd"])
    uniform_fg, uniform_bg = uniform.fgd_masks(None, torch.zeros(1, 1, *BEV))
    assert torch.all(uniform_fg == 0) and torch.allclose(uniform_bg, torch.full((1, *BEV), 1 / 256))
