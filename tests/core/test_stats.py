"""Mean and standard deviation of repeated measurements."""
from __future__ import annotations

import pytest

from projects.mmdet3d_plugin.core.stats import mean_std


def test_mean_std_uses_the_sample_deviation():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        mean_std([])
