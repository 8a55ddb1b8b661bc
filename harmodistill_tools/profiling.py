"""``torch.profiler`` over a few steps: a chrome trace and the top operators as tables."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

#: Sort key of the operator table -> file name, per device type.
SORT_KEYS = {"cpu": {"self_cpu_time_total": "top_ops_self_cpu.txt"},
             "cuda": {"self_cpu_time_total": "top_ops_self_cpu.txt",
                      "self_device_time_total": "top_ops_self_cuda.txt"}}


def profile_steps(run_step: Callable[[], None], steps: int, out_dir: Path, device: torch.device,
                  row_limit: int = 20) -> dict[str, str]:
    """Run ``run_step`` ``steps`` times under ``torch.profiler`` and write the results.

    Writes ``out_dir/trace.json`` (open in chrome://tracing or https://ui.perfetto.dev) and one
    table of the top ``row_limit`` operators per sort key of :data:`SORT_KEYS` (self CPU time;
    on CUDA also self device time), each printed too.

    Returns:
        ``trace`` -> its path, and each sort key -> the path of its table.
    """
    if steps < 1:
        raise ValueError(f"profiling needs at least one step, got {steps}")
    out_dir.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            run_step()
    files = {"trace": str(out_dir / "trace.json")}
    prof.export_chrome_trace(files["trace"])
    averages = prof.key_averages()
    for key, name in SORT_KEYS[device.type].items():
        table = averages.table(sort_by=key, row_limit=row_limit)
        (out_dir / name).write_text(table + "\n")
        files[key] = str(out_dir / name)
        print(f"top {row_limit} operators by {key} over {steps} profiled steps:\n{table}")
    return files
