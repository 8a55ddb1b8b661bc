"""Random draws for the augmentation transforms.

All draws come from torch's default generator rather than numpy's global state: a
``DataLoader`` seeds torch's generator differently in every worker (``base_seed + worker_id``),
whereas numpy's global state is copied unchanged into forked workers, which would make
every worker repeat the same augmentations. ``torch.manual_seed`` makes a run reproducible.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def uniform(low: float, high: float) -> float:
    """One draw from ``U(low, high)`` (``low`` itself when ``low == high``)."""
    if high < low:
        raise ValueError(f"uniform range must satisfy low <= high, got ({low}, {high})")
    return torch.empty((), dtype=torch.float64).uniform_(float(low), float(high)).item()


def coin() -> bool:
    """A fair coin flip."""
    return bool(torch.randint(0, 2, ()).item())


def normal(std: Sequence[float]) -> np.ndarray:
    """One zero-mean normal draw per entry of ``std``: float64 array of ``len(std)``."""
    std_t = torch.as_tensor(np.asarray(std, dtype=np.float64))
    if (std_t < 0).any():
        raise ValueError(f"standard deviations must be >= 0, got {list(std)}")
    return torch.normal(torch.zeros_like(std_t), std_t).numpy()
