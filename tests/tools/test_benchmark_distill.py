"""tools/benchmark_distill.py on the tiny RayDN distiller; nothing is timed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_DISTILL = str(REPO / "tests" / "kd" / "configs" / "tiny_distill_raydn.py")
TINY_TEACHER = REPO / "tests" / "kd" / "configs" / "tiny_raydn.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("benchmark_distill", REPO / "tools" / "benchmark_distill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_options(world: Path, infos: dict[str, Path]) -> list[str]:
    return ["--cfg-options", f"data.train.data_root={world}", f"data.train.ann_file={infos['train']}"]


def test_random_teacher_step_against_baseline(synthetic_world, synthetic_infos, tmp_path, capsys) -> None:
    out = tmp_path / "distill.json"
    result = load_tool().main([TINY_DISTILL, "--iters", "1", "--warmup", "0", "--random-teacher",
                               "--out", str(out), *train_options(synthetic_world, synthetic_infos)])
    printed = capsys.readouterr().out
    assert result["teacher"].startswith("UNTRAINED") and "UNTRAINED" in printed
    for variant in ("distill", "baseline"):
        assert variant in printed
        for part in ("forward", "backward", "optimizer", "total"):
            assert set(result[variant][part]) == {"mean_ms", "p50_ms", "p90_ms"}
        assert result[variant]["peak_memory_mib"] >= 0
    distill_terms = set(result["distill"]["loss_terms"]) - set(result["baseline"]["loss_terms"])
    assert distill_terms == {f"loss_bkl_fpn_{i}" for i in range(4)}
    assert result["time_ratio"] > 0 and "overhead distill / baseline" in printed
    assert result["batch_size"] == 1 and result["img_shape"][:2] == [1, 6]
    assert json.loads(out.read_text())["time_ratio"] == result["time_ratio"]


def test_teacher_checkpoint_choice(tmp_path) -> None:
    tool = load_tool()
    cfg = tool.load_config(TINY_DISTILL)
    with pytest.raises(FileNotFoundError, match="--random-teacher"):
        tool.teacher_checkpoint(cfg, None, False, tmp_path)
    path, note = tool.teacher_checkpoint(cfg, None, True, tmp_path)
    assert Path(path).is_file() and note.startswith("UNTRAINED")
    trained = tmp_path / "teacher.pth"
    torch.save(torch.load(path, weights_only=True), trained)
    assert tool.teacher_checkpoint(cfg, str(trained), False, tmp_path) == (str(trained), f"trained weights from {trained}")


def test_refuses_a_plain_detector_and_missing_training_data(tmp_path) -> None:
    tool = load_tool()
    with pytest.raises(ValueError, match="not a distiller"):
        tool.main([str(TINY_TEACHER), "--cfg-options", "data.train.ann_file=x"])
    with pytest.raises(FileNotFoundError, match="training data"):
        tool.main([TINY_DISTILL, "--random-teacher", "--cfg-options", f"data.train.ann_file={tmp_path / 'no.pkl'}"])
