"""Random draws come from torch's seeded generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.datasets.pipelines import sampling


def test_draws_are_reproducible_with_torch_seed() -> None:
    torch.manual_seed(11)
    first = (sampling.uniform(0.0, 1.0), sampling.coin(), sampling.normal([1.0, 0.0]).tolist())
    torch.manual_seed(11)
    np.random.seed(0)
    assert (sampling.uniform(0.0, 1.0), sampling.coin(), sampling.normal([1.0, 0.0]).tolist()) == first


def test_ranges_and_degenerate_cases() -> None:
    values = [sampling.uniform(-2.0, 3.0) for _ in range(200)]
    assert -2.0 <= min(values) and max(values) <= 3.0
    assert sampling.uniform(0.5, 0.5) == 0.5
    assert sampling.normal([0.0, 0.0, 0.0]).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="low <= high"):
        sampling.uniform(1.0, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        sampling.normal([-1.0])
