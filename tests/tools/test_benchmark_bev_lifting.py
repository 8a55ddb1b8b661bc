"""tools/benchmark_bev_lifting.py on a tiny grid; nothing is timed."""
from __future__ import annotations

import importlib.util
import json

import pytest

from projects.mmdet3d_plugin.paths import REPO_ROOT


def load_tool():
    spec = importlib.util.spec_from_file_location("benchmark_bev_lifting",
                                                  REPO_ROOT / "tools" / "benchmark_bev_lifting.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reports_both_variants_the_ratio_and_the_coverage(tmp_path, capsys) -> None:
    out = tmp_path / "lifting.json"
    result = load_tool().main(["--image-size", "64", "176", "--stride", "8", "--channels", "4", "--bev-size", "8",
                               "8", "--num-heights", "2", "--iters", "1", "--warmup", "0", "--out", str(out)])
    assert json.loads(out.read_text())["features"] == [6, 4, 8, 22]
    for name in ("sparse", "dense"):
        stats = result["variants"][name]
        assert {"forward", "backward", "total", "peak_memory_mib"} <= set(stats)
        assert stats["total"]["mean_ms"] > 0
    assert set(result["dense_over_sparse"]) == {"forward", "backward", "total"}
    assert 0.5 < result["seen_voxel_share"] <= 1.0 and 1.0 <= result["cameras_per_seen_voxel"] <= 2.0
    assert "dense / sparse:" in capsys.readouterr().out


def test_an_image_size_off_the_stride_is_refused() -> None:
    with pytest.raises(SystemExit):
        load_tool().parse_args(["--image-size", "250", "704"])
