"""Rank and world size of the current process, from torch.distributed or given explicitly."""
from __future__ import annotations

import numpy as np
import torch.distributed as dist


def resolve_rank(world_size: int | None, rank: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: explicit values where given, else torch.distributed's, else (0, 1).

    Raises:
        ValueError: if ``world_size < 1`` or ``rank`` is not in ``[0, world_size)``.
    """
    initialised = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return rank, world_size


def dataset_flag(dataset: object, sampler_name: str) -> np.ndarray:
    """The ``flag`` array of a dataset (segment id per index), or a clear error naming the sampler."""
    flag = getattr(dataset, "flag", None)
    if flag is None:
        raise ValueError(
            f"{sampler_name} needs a dataset with a 'flag' attribute (segment id per index, "
            f"e.g. CustomNuScenesDataset); got {type(dataset).__name__}"
        )
    return np.asarray(flag, dtype=np.int64).reshape(-1)
