"""The benchmark helpers (latency statistics, stage timer, parameters, FLOPs, peak memory) on a toy."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from harmodistill_tools.benchmarking import (PeakMemoryMeter, StageTimer, count_gflops, count_parameters,
                                             latency_stats, streaming_indices)


class Toy(nn.Module):
    """A detector-shaped module: img_backbone, img_neck and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.img_backbone = nn.Conv2d(3, 4, 3)
        self.img_neck = nn.Conv2d(4, 4, 1)
        self.pts_bbox_head = nn.Linear(4, 2)
        self.img_roi_head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pts_bbox_head(self.img_neck(self.img_backbone(x)).mean((2, 3)))


def test_latency_stats_and_streaming_indices() -> None:
    stats = latency_stats([0.001, 0.002, 0.003])
    assert stats == pytest.approx(dict(mean_ms=2.0, p50_ms=2.0, p90_ms=2.8))
    assert list(streaming_indices(6, 2, 4)) == [[0, 3], [1, 4], [2, 5], [0, 3]]
    with pytest.raises(ValueError, match="cannot stream"):
        list(streaming_indices(1, 2, 1))


def test_stage_timer_parameters_and_flops_of_a_toy() -> None:
    model = Toy()
    with StageTimer(model, sync=lambda: None) as timer:
        model(torch.zeros(1, 3, 8, 8))
        seconds = timer.pop()
        assert set(seconds) == {"backbone", "neck"} and all(v >= 0 for v in seconds.values())
        assert timer.pop() == {"backbone": 0.0, "neck": 0.0}
    assert not model.img_backbone._forward_hooks and not model.img_backbone._forward_pre_hooks
    params = count_parameters(model)
    assert params == dict(backbone=112, neck=20, head=10, aux_2d_head=25, inference=142, total=167)
    flops = count_gflops(model, lambda: model(torch.zeros(1, 3, 8, 8)))
    assert flops["backbone"] == pytest.approx(2 * 36 * 4 * 27 / 1e9)
    assert flops["total"] == pytest.approx(flops["backbone"] + flops["neck"] + flops["head"])
    with pytest.raises(KeyError, match="img_neck"):
        count_parameters(nn.Sequential(), {"neck": "img_neck"})


def test_peak_memory_meter_reports_a_number() -> None:
    with PeakMemoryMeter(torch.device("cpu")) as meter:
        torch.ones(1024, 1024).sum()
    assert meter.peak_mib >= 0 and "RSS" in meter.method
