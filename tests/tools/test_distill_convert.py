"""tools/distill_convert.py: the exported student loads strictly and predicts as the distiller does."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from projects.mmdet3d_plugin.core.checkpoint import load_checkpoint, read_checkpoint
from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import geometry_batch
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
CONFIGS = REPO / "tests" / "kd" / "configs"
NUM_CAMS, H, W = 6, 64, 176


def _tool():
    spec = importlib.util.spec_from_file_location("distill_convert", REPO / "tools" / "distill_convert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batch() -> dict:
    """One sample, six cameras around the car (f = 80 px), for predict mode."""
    yaws = [-1.047 * n for n in range(NUM_CAMS)]
    return geometry_batch(1, yaws, (H, W), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A tiny distiller and an engine-style checkpoint of it (state_dict + training state)."""
    tmp = tmp_path_factory.mktemp("convert")
    student_cfg = Config.fromfile(str(CONFIGS / "tiny_raydn.py"))
    torch.manual_seed(1)
    torch.save(MODELS.build(student_cfg.model).state_dict(), tmp / "teacher.pth")
    cfg = Config.fromfile(str(CONFIGS / "tiny_distill_raydn.py"))
    cfg.merge_from_dict({"model.teacher_ckpt": str(tmp / "teacher.pth")})
    torch.manual_seed(0)
    distiller = MODELS.build(cfg.model)
    ckpt = tmp / "latest.pth"
    torch.save({"state_dict": distiller.state_dict(), "global_step": 7, "optimizer_states": [{}],
                "temporal_state": {"student.pts_bbox_head.memory": {}}}, ckpt)
    return distiller, ckpt


def test_export_loads_strictly_and_predicts_like_the_distiller(distilled, tmp_path, capsys) -> None:
    distiller, ckpt = distilled
    dst = tmp_path / "out" / "student.pth"
    assert _tool().main(["--src_path", str(ckpt), "--dst_path", str(dst),
                         "--config", str(CONFIGS / "tiny_distill_raydn.py")]) == 0
    out = capsys.readouterr().out
    kept, dropped = len(distiller.student.state_dict()), len(distiller.teacher.state_dict())
    assert f"kept {kept} student keys" in out and f"dropped {dropped} teacher keys" in out
    assert "strict load into the student" in out
    assert "optimizer_states" in out and "temporal_state" in out
    saved = read_checkpoint(dst)
    assert set(saved) == {"state_dict", "meta"} and saved["meta"]["global_step"] == 7
    assert not [k for k in saved["state_dict"] if k.startswith(("student.", "teacher."))]
    student = MODELS.build(Config.fromfile(str(CONFIGS / "tiny_raydn.py")).model)
    load_checkpoint(student, dst, strict=True)
    distiller.eval()
    distiller.reset_memory()
    student.eval()
    with torch.no_grad():
        ours, plain = distiller(_batch(), mode="predict"), student(_batch(), mode="predict")
    for key in ("boxes_3d", "scores_3d", "labels_3d"):
        assert torch.equal(ours[0][key], plain[0][key])


def test_plain_student_config_also_verifies(distilled, tmp_path, capsys) -> None:
    _, ckpt = distilled
    assert _tool().main(["--src_path", str(ckpt), "--dst_path", str(tmp_path / "s.pth"),
                         "--config", str(CONFIGS / "tiny_raydn.py")]) == 0
    assert "OK" in capsys.readouterr().out


def test_a_non_distiller_file_is_refused(tmp_path, capsys) -> None:
    plain = tmp_path / "plain.pth"
    torch.save({"state_dict": {"img_neck.fpn_convs.0.conv.weight": torch.ones(2)}}, plain)
    dst = tmp_path / "student.pth"
    assert _tool().main(["--src_path", str(plain), "--dst_path", str(dst)]) == 1
    assert "not a distiller checkpoint" in capsys.readouterr().err and not dst.exists()
    assert _tool().main(["--src_path", str(tmp_path / "missing.pth"), "--dst_path", str(dst)]) == 1
