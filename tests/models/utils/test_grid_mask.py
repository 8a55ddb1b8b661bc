"""GridMask: training-only, one binary grid shared by all images and channels."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.models.utils.grid_mask import GridMask


def test_identity_in_eval_and_with_zero_probability() -> None:
    x = torch.randn(2, 3, 32, 48)
    mask = GridMask(prob=1.0).eval()
    assert torch.equal(mask(x), x)
    assert torch.equal(GridMask(prob=0.0).train()(x), x)


@pytest.mark.parametrize("mode", [0, 1])
def test_training_applies_one_binary_grid_to_every_image_and_channel(mode: int) -> None:
    torch.manual_seed(0)
    grid = GridMask(True, True, rotate=1, ratio=0.5, mode=mode, prob=1.0).train()
    out = grid(torch.ones(2, 3, 32, 48))
    values = set(out.unique().tolist())
    assert values == {0.0, 1.0}
    assert torch.equal(out, out[:1, :1].expand_as(out))
    kept = out.mean().item()
    assert 0.05 < kept < 0.95


def test_rotation_offset_and_stripe_geometry() -> None:
    torch.manual_seed(1)
    mask = GridMask(True, False, rotate=1, ratio=0.5, mode=0).make_mask(40, 40, torch.device("cpu"))
    assert torch.equal(mask, mask[:, :1].expand_as(mask))  # horizontal stripes only
    rotated = GridMask(True, True, rotate=90, mode=0).make_mask(40, 60, torch.device("cpu"))
    assert rotated.shape == (40, 60) and set(rotated.unique().tolist()) <= {0.0, 1.0}
    noisy = GridMask(prob=1.0, offset=True).train()(torch.zeros(1, 1, 16, 16))
    assert noisy.abs().max() <= 1.0 and noisy.abs().sum() > 0


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="mode"):
        GridMask(mode=2)
    with pytest.raises(ValueError, match="rotate"):
        GridMask(rotate=0)
    with pytest.raises(ValueError, match="prob"):
        GridMask(prob=1.5)
