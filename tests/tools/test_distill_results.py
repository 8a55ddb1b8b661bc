"""tools/distill_results.py: variants, the commands it runs, and reuse of finished runs."""
from __future__ import annotations

import importlib.util
import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.engine.train_cli import train_arg_parser
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
spec = importlib.util.spec_from_file_location("distill_results", REPO / "tools" / "distill_results.py")
tool = importlib.util.module_from_spec(spec)
sys.modules["distill_results"] = tool
spec.loader.exec_module(tool)


def args_for(tmp_path: Path) -> Namespace:
    return Namespace(data_root=tmp_path / "world", teacher_ckpt=tmp_path / "teacher.pth",
                     student_config=tool.STUDENT_CFG, distill_config=tool.DISTILL_CFG,
                     labelled_fraction=1.0)


def test_variants_map_to_their_options_on_the_distillation_config():
    options = tool.variant_options(tool.DISTILL_CFG, ["plain", "all", "inherit", "losses", "query", "output"])
    assert options == {
        "plain": None,
        "all": [],
        "inherit": ["model.enabled_losses=[]"],
        "losses": ["model.inherit=[]"],
        "query": ["model.enabled_losses=[field]", "model.inherit=[]"],
        "output": ["model.enabled_losses=[output,relation]", "model.inherit=[]"],
    }
    assert list(tool.variant_options(tool.DISTILL_CFG, None)) == [
        "plain", "all", "inherit", "losses", "feature", "output", "query"]
    with pytest.raises(SystemExit, match="unknown variant 'fitnets'"):
        tool.variant_options(tool.DISTILL_CFG, ["fitnets"])


def test_inherit_is_only_a_variant_of_a_config_that_inherits(tmp_path):
    config = tmp_path / "no_inherit.py"
    config.write_text(f"_base_ = ['{tool.DISTILL_CFG}']\nmodel = dict(inherit=None)\n")
    assert not {"inherit", "losses"} & set(tool.variant_options(config, None))
    with pytest.raises(SystemExit, match="unknown variant 'inherit'"):
        tool.variant_options(config, ["inherit"])


def test_plain_runs_train_py_and_a_family_runs_the_distiller_with_only_its_losses(tmp_path):
    plain = tool.train_command(None, 1, 20, tmp_path / "plain", args_for(tmp_path))
    assert plain[1] == "tools/train.py" and plain[2] == str(tool.STUDENT_CFG)
    assert "--resume" not in plain and not any("teacher_ckpt" in part for part in plain)
    assert plain[plain.index("--seed") + 1] == "1"

    (tmp_path / "feature").mkdir()
    (tmp_path / "feature" / "latest.pth").touch()
    cmd = tool.train_command(["model.enabled_losses=[bkl_fpn_0,bkl_fpn_1]", "model.inherit=[]"], 2, 20,
                             tmp_path / "feature", args_for(tmp_path))
    assert cmd[1] == "tools/distillation.py" and "--resume" in cmd  # an interrupted run continues
    parser = train_arg_parser("d", "c", "e")
    parsed = parser.parse_args(cmd[2:])
    assert parsed.cfg_options["model.enabled_losses"] == ["bkl_fpn_0", "bkl_fpn_1"]
    assert parsed.cfg_options["model.inherit"] == []
    assert parsed.cfg_options["model.teacher_ckpt"] == str(tmp_path / "teacher.pth")
    assert parsed.cfg_options["runner.max_iters"] == 20


def test_a_run_counts_as_finished_only_at_the_budget_with_metrics(tmp_path):
    assert tool.finished(tmp_path, 20) is None
    torch.save({"global_step": 10}, tmp_path / "latest.pth")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"NDS": 0.3, "mAP": 0.2, "mATE": 0.5}))
    assert tool.finished(tmp_path, 20) is None  # stopped before the budget
    torch.save({"global_step": 20}, tmp_path / "latest.pth")
    assert tool.finished(tmp_path, 20) == {"NDS": 0.3, "mAP": 0.2}


def test_label_scarce_runs_set_the_fraction_for_plain_and_distilled_students(tmp_path):
    args = args_for(tmp_path)
    parser = train_arg_parser("d", "c", "e")
    full = parser.parse_args(tool.train_command(None, 0, 20, tmp_path / "plain", args)[2:])
    assert "data.train.labelled_fraction" not in full.cfg_options
    args.labelled_fraction = 0.25
    for variant_opts in (None, ["model.inherit=[]"]):
        parsed = parser.parse_args(tool.train_command(variant_opts, 0, 20, tmp_path / "run", args)[2:])
        assert parsed.cfg_options["data.train.labelled_fraction"] == 0.25


def test_a_work_dir_holds_one_setting(tmp_path):
    settings = tmp_path / "settings.json"
    tool.check_settings(settings, {"labelled_fraction": 0.25})
    tool.check_settings(settings, {"labelled_fraction": 0.25})
    with pytest.raises(SystemExit, match="use another --work-dir"):
        tool.check_settings(settings, {"labelled_fraction": 1.0})
