"""tools/kd_gradients.py on the tiny RayDN distiller and the tiny generated world."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from mmengine.config import Config

from projects.mmdet3d_plugin.registry import MODELS
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_DISTILL = str(REPO / "tests" / "kd" / "configs" / "tiny_distill_raydn.py")
TINY_TEACHER = REPO / "tests" / "kd" / "configs" / "tiny_raydn.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("kd_gradients", REPO / "tools" / "kd_gradients.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_of_the_balanced_kl_terms_on_two_batches(synthetic_world, synthetic_infos, tmp_path, capsys) -> None:
    torch.manual_seed(1)
    teacher = tmp_path / "teacher.pth"
    torch.save({"state_dict": MODELS.build(Config.fromfile(str(TINY_TEACHER)).model.to_dict()).state_dict()},
               teacher)
    out = tmp_path / "report.json"
    report = load_tool().main([
        TINY_DISTILL, "--teacher-ckpt", str(teacher), "--batches", "2", "--out", str(out),
        "--target-share", "feature=neck:0.5", "--cfg-options", f"data.train.data_root={synthetic_world}",
        f"data.train.ann_file={synthetic_infos['train']}"])
    printed = capsys.readouterr().out
    assert "| detection |" in printed and "share neck" in printed
    terms = report["terms"]
    assert set(terms) == {"detection", "family:feature"} | {f"bkl_fpn_{i}" for i in range(4)}
    for name in ("bkl_fpn_0", "family:feature"):
        assert terms[name]["norms"]["neck"] > 0 and terms[name]["norms"]["head"] == 0
        assert len(terms[name]["per_batch"]["neck"]) == 2
    factor = 0.5 / terms["family:feature"]["shares"]["neck"]
    assert report["suggested"]["feature"]["bkl_fpn_3"] == pytest.approx(0.1 * factor, rel=1e-6)
    assert json.loads(out.read_text())["suggested"] == report["suggested"]


def test_bad_targets_and_configs_are_refused(tmp_path) -> None:
    tool = load_tool()
    families = {"feature": ["bkl_fpn_0"]}
    assert tool.parse_targets(["feature=neck:0.25"], families) == {"feature": ("neck", 0.25)}
    for bad in ("feature=neck", "output=head:0.5", "feature=wheels:0.5"):
        with pytest.raises(SystemExit):
            tool.parse_targets([bad], families)
    with pytest.raises(SystemExit, match="not a distillation config"):
        tool.main([str(TINY_TEACHER), "--batches", "1"])
