"""The seeds-study picture."""
from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from projects.mmdet3d_plugin.visualization.seed_plot import plot_seed_results


def test_writes_a_png_with_one_panel_per_metric(tmp_path):
    runs = {"plain": {0: {"NDS": 0.1, "mAP": 0.05}, 1: {"NDS": 0.3, "mAP": 0.15}},
            "all": {0: {"NDS": 0.2, "mAP": 0.05}, 1: {"NDS": 0.35, "mAP": 0.10}, 2: {"NDS": 0.3, "mAP": 0.1}}}
    one = plot_seed_results(runs, tmp_path / "a" / "one.png", metrics=("NDS",))
    two = plot_seed_results(runs, tmp_path / "two.png", title="study")
    (h1, w1), (h2, w2) = mpimg.imread(one).shape[:2], mpimg.imread(two).shape[:2]
    assert h1 == h2 and w2 > 1.8 * w1  # a second panel doubles the width


def test_nothing_to_plot_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        plot_seed_results({"plain": {}}, tmp_path / "x.png")
