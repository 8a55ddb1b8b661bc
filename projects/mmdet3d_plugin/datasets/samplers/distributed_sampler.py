"""Ordered sampler for validation and test: each rank walks a contiguous run of whole segments.

The dataset order (scene, then time) is cut into ``world_size`` contiguous parts at segment
boundaries (``dataset.flag``; whole scenes for a dataset not in ``seq_mode``), each part as
close as possible to ``len(dataset) / world_size`` frames. Every index is visited exactly
once, in order, so the temporal state of a streaming model stays valid; parts can differ in
length (no padding). ``rank_indices[r]`` tells which indices rank ``r`` gets, so per-rank
results can be gathered back into dataset order.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from ...registry import DATA_SAMPLERS
from .dist_info import dataset_flag, resolve_rank


def contiguous_cuts(flag: np.ndarray, num_parts: int) -> list[int]:
    """Cut points ``[0, c_1, ..., c_{P-1}, N]`` at segment starts, balancing the part sizes.

    Args:
        flag: (N,) segment id per index, equal ids contiguous.
        num_parts: number of parts P.

    Returns:
        P + 1 non-decreasing cut points.
    """
    size = len(flag)
    boundaries = np.flatnonzero(np.r_[True, flag[1:] != flag[:-1]]) if size else np.zeros(0, dtype=np.int64)
    boundaries = np.r_[boundaries, size]
    cuts = [0]
    for part in range(1, num_parts):
        candidates = boundaries[boundaries >= cuts[-1]]
        target = part * size / num_parts
        cuts.append(int(candidates[np.argmin(np.abs(candidates - target))]))
    cuts.append(size)
    return cuts


@DATA_SAMPLERS.register_module()
class DistributedSampler(Sampler[int]):
    """The indices of this rank's contiguous run of whole segments, in dataset order.

    Args:
        dataset: a dataset with ``flag`` (N,) (e.g. ``CustomNuScenesDataset``).
        world_size: number of ranks (default: torch.distributed's world size, or 1).
        rank: this rank (default: torch.distributed's rank, or 0).
        shuffle: must be False (accepted because StreamPETR configs pass it).
    """

    def __init__(
        self,
        dataset: Any,
        world_size: int | None = None,
        rank: int | None = None,
        shuffle: bool = False,
    ) -> None:
        if shuffle:
            raise ValueError("DistributedSampler keeps the temporal order; shuffle=True is not supported")
        self.rank, self.world_size = resolve_rank(world_size, rank)
        cuts = contiguous_cuts(dataset_flag(dataset, type(self).__name__), self.world_size)
        self.rank_indices: list[list[int]] = [list(range(cuts[r], cuts[r + 1])) for r in range(self.world_size)]

    @property
    def indices(self) -> list[int]:
        """Indices of this rank, in order."""
        return self.rank_indices[self.rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
