"""harmodistill_tools.sync_count: counting and attributing CUDA sync-debug warnings."""
from __future__ import annotations

import warnings

import pytest
import torch

from harmodistill_tools import sync_count
from harmodistill_tools.sync_count import SYNC_WARNING, count_syncs, format_syncs


def test_cpu_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs a CUDA device"):
        count_syncs(lambda: None, 1, torch.device("cpu"))


def test_counts_per_step_and_site_and_restores_the_mode(monkeypatch) -> None:
    """The sync-debug mode is faked (no GPU here); the warnings are what PyTorch raises."""
    modes = ["default"]
    monkeypatch.setattr(torch.cuda, "get_sync_debug_mode", lambda: modes[-1])
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    calls = iter([2, 0, 1])

    def step() -> None:
        for _ in range(next(calls)):
            warnings.warn(SYNC_WARNING, UserWarning)
        warnings.warn("something else", UserWarning)

    result = count_syncs(step, 3, torch.device("cuda"))
    assert result["per_step"] == [2, 0, 1] and result["mean_per_step"] == 1.0
    assert sum(result["sites"].values()) == pytest.approx(1.0)
    assert all("test_sync_count.py" in site for site in result["sites"])
    assert modes == ["default", "warn", "default"]
    assert "1.0 per step over 3 steps" in format_syncs(result)
    with pytest.raises(ValueError, match="at least one step"):
        count_syncs(step, 0, torch.device("cuda"))
    assert sync_count.SYNC_WARNING == "called a synchronizing CUDA operation"
