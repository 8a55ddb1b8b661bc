"""Loss families of an ablation and the mean ± std table."""
from __future__ import annotations

import pytest

from harmodistill_tools.ablation import loss_families, results_table
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.paths import REPO_ROOT

DISTILL_CFG = REPO_ROOT / "projects" / "configs" / "synthetic" / "distill_raydn_r50_r18_synthetic.py"


def test_synthetic_distill_config_splits_into_the_three_families():
    families = loss_families(load_config(DISTILL_CFG).model.distill_losses)
    assert families == {"feature": [f"bkl_fpn_{i}" for i in range(4)], "query": ["field"],
                        "output": ["output", "relation"]}


def test_synthetic_bev_config_adds_the_bev_family():
    families = loss_families(load_config(DISTILL_CFG.with_name("distill_raydn_r50_r18_bev_synthetic.py"))
                             .model.distill_losses)
    assert families["bev"] == ["bev_fpn_0", "bev_fpn_1"] and families["feature"] == [f"bkl_fpn_{i}" for i in range(4)]


def test_a_loss_of_unknown_type_is_refused_with_its_name():
    with pytest.raises(KeyError, match="distill_losses.mine has type 'MyLoss'"):
        loss_families({"mine": {"type": "MyLoss"}})


def test_table_pairs_differences_by_seed_and_counts_wins():
    runs = {"plain": {0: {"NDS": 0.1, "mAP": 0.05}, 1: {"NDS": 0.3, "mAP": 0.15}},
            "all": {0: {"NDS": 0.2, "mAP": 0.05}, 1: {"NDS": 0.35, "mAP": 0.10}}}
    table = results_table(runs, baseline="plain")
    lines = table.splitlines()
    assert lines[0].startswith("| variant | seeds | NDS (mean ± std) | mAP (mean ± std)")
    plain, distilled = lines[2], lines[3]
    assert "0.2000 ± 0.1414" in plain and plain.endswith("|  |  |  |")  # no difference to itself
    assert "+0.0750 ± 0.0354" in distilled  # paired NDS gains 0.10 and 0.05
    assert "-0.0250 ± 0.0354" in distilled  # paired mAP changes 0.00 and -0.05
    assert distilled.endswith("| 2/2 |")
    with pytest.raises(KeyError, match="baseline 'none'"):
        results_table(runs, baseline="none")
