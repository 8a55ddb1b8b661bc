"""Counting the host <-> device synchronisations of training steps on CUDA.

``torch.cuda.set_sync_debug_mode('warn')`` makes every synchronising CUDA operation that
PyTorch tracks (blocking copies to or from pageable host memory, ``.item()``, ``nonzero``,
boolean-mask indexing, stream syncs) raise a ``UserWarning`` "called a synchronizing CUDA
operation"; :func:`count_syncs` captures those warnings over a few steps and attributes each
to the Python line that triggered it. ``torch.cuda.synchronize`` (the benchmark timer's own
barrier) is not counted; neither are ``torch.distributed`` operations (PyTorch does not
track them).
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Callable

import torch

#: The text of PyTorch's sync-debug warning.
SYNC_WARNING = "called a synchronizing CUDA operation"


def count_syncs(run_step: Callable[[], Any], steps: int, device: torch.device, top: int = 15) -> dict[str, Any]:
    """Run ``run_step`` ``steps`` times in sync-debug ``warn`` mode and count the syncs.

    Args:
        run_step: one training step.
        steps: steps to count over (at least 1).
        device: must be a CUDA device (the CPU has no host synchronisation to count).
        top: how many source lines to list.

    Returns:
        ``steps``, ``per_step`` (list of counts), ``mean_per_step`` and ``sites``: the ``top``
        source lines ``"file:line"`` with their syncs per step, most first.
    """
    if device.type != "cuda":
        raise ValueError(f"counting host syncs needs a CUDA device (torch.cuda.set_sync_debug_mode); "
                         f"got {device}. On the CPU there is no device to synchronise with")
    if steps < 1:
        raise ValueError(f"counting syncs needs at least one step, got {steps}")
    previous = torch.cuda.get_sync_debug_mode()
    per_step, sites = [], Counter()
    try:
        torch.cuda.set_sync_debug_mode("warn")
        for _ in range(steps):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run_step()
            syncs = [w for w in caught if SYNC_WARNING in str(w.message)]
            per_step.append(len(syncs))
            sites.update(f"{w.filename}:{w.lineno}" for w in syncs)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    return dict(steps=steps, per_step=per_step, mean_per_step=sum(per_step) / steps,
                sites={site: count / steps for site, count in sites.most_common(top)})


def format_syncs(result: dict[str, Any]) -> str:
    """The human-readable lines of a :func:`count_syncs` result."""
    lines = [f"host syncs: {result['mean_per_step']:.1f} per step over {result['steps']} steps "
             f"({', '.join(str(n) for n in result['per_step'])})"]
    lines += [f"  {count:>6.1f}/step  {site}" for site, count in result["sites"].items()]
    return "\n".join(lines)
