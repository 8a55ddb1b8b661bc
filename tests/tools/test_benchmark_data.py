"""tools/benchmark_data.py runs the train pipeline on a world and reports a positive rate."""
from __future__ import annotations

import importlib.util
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT


def test_benchmark_runs_on_the_world(synthetic_world, synthetic_infos, capsys) -> None:
    spec = importlib.util.spec_from_file_location("benchmark_data", REPO / "tools" / "benchmark_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rate = module.main([
        "--data-root", str(synthetic_world), "--ann-file", str(synthetic_infos["train"]),
        "--num-samples", "2", "--warmup", "1", "--image-size", "400", "225", "--final-dim", "64", "176",
    ])
    out = capsys.readouterr().out
    assert rate > 0 and "samples/s" in out and "(6, 3, 64, 192)" in out
    assert "ResizeCropFlipRotImage" in out
