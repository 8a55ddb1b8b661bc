"""ConvAdapter / LinearAdapter project student channels to the teacher's, keeping other dims."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS


def test_conv_adapter_keeps_leading_and_spatial_dims() -> None:
    adapter = MODELS.build(dict(type="ConvAdapter", in_channels=8, out_channels=16, kernel_size=3))
    assert adapter(torch.randn(2, 3, 8, 5, 7)).shape == (2, 3, 16, 5, 7)
    assert adapter(torch.randn(4, 8, 5, 7)).shape == (4, 16, 5, 7)
    with pytest.raises(ValueError, match=r"expects \(\.\.\., 8, H, W\)"):
        adapter(torch.randn(4, 9, 5, 7))
    with pytest.raises(ValueError, match="odd"):
        MODELS.build(dict(type="ConvAdapter", in_channels=8, out_channels=16, kernel_size=2))


def test_linear_adapter_projects_the_last_dim() -> None:
    adapter = MODELS.build(dict(type="LinearAdapter", in_features=8, out_features=4))
    out = adapter(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 4)
    out.sum().backward()
    assert adapter.proj.weight.grad is not None
    with pytest.raises(ValueError, match="expects"):
        adapter(torch.randn(2, 5, 7))
