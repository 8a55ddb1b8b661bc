"""The command line shared by tools/train.py and tools/distillation.py."""
from __future__ import annotations


import pytest

from projects.mmdet3d_plugin.engine.train_cli import train_arg_parser, train_from_args
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = REPO / "tests" / "engine" / "configs" / "tiny_raydn.py"


def test_parser_defaults_and_resume_forms():
    parser = train_arg_parser("train", "config", "runner.max_iters=1")
    args = parser.parse_args(["c.py"])
    assert (args.resume, args.seed, args.deterministic, args.cfg_options) == (False, 0, False, {})
    assert parser.parse_args(["c.py", "--resume"]).resume is True
    assert parser.parse_args(["c.py", "--resume", "x.pth"]).resume == "x.pth"
    assert parser.parse_args(["c.py", "--cfg-options", "runner.max_iters=3"]).cfg_options == {"runner.max_iters": 3}


def test_config_check_runs_before_anything_is_written(tmp_path):
    parser = train_arg_parser("train", "config", "runner.max_iters=1")
    args = parser.parse_args([str(TINY_CONFIG), "--work-dir", str(tmp_path / "work")])

    def refuse(cfg, path):
        assert cfg.model.type == "RepDetr3D" and path == str(TINY_CONFIG)
        raise SystemExit("not a distiller")

    with pytest.raises(SystemExit, match="not a distiller"):
        train_from_args(args, check_config=refuse)
    assert not (tmp_path / "work").exists()


def test_distillation_tool_refuses_a_plain_detector_config():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("distillation_tool", REPO / "tools" / "distillation.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules["distillation_tool"] = tool
    spec.loader.exec_module(tool)
    from projects.mmdet3d_plugin.engine.runner import load_config

    with pytest.raises(SystemExit, match="not a distiller"):
        tool.check_distiller_config(load_config(TINY_CONFIG), str(TINY_CONFIG))


@pytest.mark.parametrize("option, error, expected", [
    ("checkpoint_confg.interval=1", KeyError, "did you mean 'checkpoint_config'"),
    ("model.pts_bbox_head.num_querry=10", TypeError, r"model\.pts_bbox_head'.*RayDNHead.*num_query"),
    ("model.pts_bbox_head.type=RayDNHaed", KeyError, r"model\.pts_bbox_head'.*RayDNHead"),
    ("runner.max_iters=0", ValueError, "runner.max_iters must be a positive"),
])
def test_config_mistakes_fail_before_the_work_dir_exists(tmp_path, option, error, expected):
    parser = train_arg_parser("train", "config", "runner.max_iters=1")
    args = parser.parse_args([str(TINY_CONFIG), "--work-dir", str(tmp_path / "work"), "--cfg-options", option])
    with pytest.raises(error, match=expected):
        train_from_args(args)
    assert not (tmp_path / "work").exists()
