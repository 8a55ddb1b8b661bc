"""Loading the tensors of a checkpoint whose names and shapes match (mmcv's non-strict load_from)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError, save_checkpoint
from projects.mmdet3d_plugin.core.checkpoint_match import (load_matching_checkpoint,
                                                           match_state_dicts)


class _Net(nn.Module):
    """Two top-level modules, like a detector's ``img_backbone`` / ``img_neck``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.neck = nn.Linear(4, 2)


def _file_state() -> dict[str, torch.Tensor]:
    """A checkpoint of a 'wider' relative: some names and shapes match, some do not."""
    return {
        "backbone.0.weight": torch.full((4, 3, 3, 3), 0.5),       # loads
        "backbone.0.bias": torch.full((4,), 0.25),                 # loads
        "backbone.1.running_mean": torch.full((4,), 3.0),          # loads (buffer)
        "backbone.1.weight": torch.ones(8),                        # skipped: [4] vs [8]
        "neck.weight": torch.full((2, 8), 7.0),                    # skipped: [2, 4] vs [2, 8]
        "roi_head.fc.weight": torch.zeros(5, 5),                   # unexpected
    }


def test_exact_report_and_values_copied(tmp_path) -> None:
    path = save_checkpoint({"state_dict": {f"module.{k}": v for k, v in _file_state().items()},
                            "meta": {"epoch": 3}}, tmp_path / "wide.pth")
    torch.manual_seed(0)
    model = _Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_matching_checkpoint(model, path)

    assert set(report.loaded) == {"backbone.0.weight", "backbone.0.bias", "backbone.1.running_mean"}
    assert report.loaded["backbone.0.weight"] == 108
    assert report.skipped == {"backbone.1.weight": ((4,), (8,)), "neck.weight": ((2, 4), (2, 8))}
    assert set(report.missing) == {"backbone.1.bias", "backbone.1.running_var",
                                   "backbone.1.num_batches_tracked", "neck.bias"}
    assert report.unexpected == ("roi_head.fc.weight",)
    assert not report.complete

    state = model.state_dict()
    assert torch.equal(state["backbone.0.weight"], torch.full((4, 3, 3, 3), 0.5))
    assert torch.equal(state["backbone.1.running_mean"], torch.full((4,), 3.0))
    for key in (*report.skipped, *report.missing):
        assert torch.equal(state[key], before[key]), key

    counts = report.by_prefix()
    assert (counts["backbone"].loaded, counts["backbone"].skipped, counts["backbone"].missing,
            counts["backbone"].model_tensors, counts["backbone"].loaded_numel) == (3, 1, 3, 7, 116)
    assert (counts["neck"].loaded, counts["neck"].skipped, counts["roi_head"].unexpected) == (0, 1, 1)
    summary = report.summary()
    assert "loaded 3 tensors (116 elements)" in summary and "wide.pth" in summary
    assert "neck.weight: [2, 4] <- [2, 8]" in summary
    assert any(line.split()[:2] == ["roi_head", "0"] for line in summary.splitlines())


def test_match_state_dicts_from_shapes_alone() -> None:
    report = match_state_dicts({"a.w": (2, 3), "a.b": (2,), "b.w": (4,)}, {"a.w": [2, 3], "b.w": [5], "c": []})
    assert report.loaded == {"a.w": 6} and report.skipped == {"b.w": ((4,), (5,))}
    assert report.missing == ("a.b",) and report.unexpected == ("c",)


def test_summary_limits_the_skipped_list() -> None:
    report = match_state_dicts({f"m.{i}": (1,) for i in range(5)} | {"x": (1,)},
                               {f"m.{i}": (2,) for i in range(5)} | {"x": (1,)})
    assert "... and 3 more" in report.summary(list_limit=2)


def test_strict_requires_every_key(tmp_path) -> None:
    path = save_checkpoint(_file_state(), tmp_path / "wide.pth")
    with pytest.raises(CheckpointError, match=r"wide\.pth.*strict"):
        load_matching_checkpoint(_Net(), path, strict=True)
    exact = save_checkpoint(_Net().state_dict(), tmp_path / "exact.pth")
    report = load_matching_checkpoint(_Net(), exact, strict=True)
    assert report.complete


def test_nothing_matching_is_an_error(tmp_path) -> None:
    path = save_checkpoint({"student.neck.weight": torch.zeros(2, 4)}, tmp_path / "distiller.pth")
    with pytest.raises(CheckpointError, match=r"no tensor of checkpoint '.*distiller\.pth' matches _Net"):
        load_matching_checkpoint(_Net(), path)


def test_truncated_wrong_and_missing_files_name_the_file(tmp_path) -> None:
    good = save_checkpoint(_file_state(), tmp_path / "good.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"truncated\.pth.*truncated, corrupt"):
        load_matching_checkpoint(_Net(), truncated)
    wrong = save_checkpoint({"epoch": 3, "note": "not weights"}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match=r"wrong\.pth.*not a state dict"):
        load_matching_checkpoint(_Net(), wrong)
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        load_matching_checkpoint(_Net(), tmp_path / "absent.pth")
