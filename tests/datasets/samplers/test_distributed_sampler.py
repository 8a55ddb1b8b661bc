"""DistributedSampler: contiguous whole segments per rank, every index once, in order."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.samplers.distributed_sampler import DistributedSampler, contiguous_cuts
from projects.mmdet3d_plugin.registry import DATA_SAMPLERS

DATASET = SimpleNamespace(flag=np.repeat(np.arange(5), (4, 4, 3, 5, 4)))


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_ranks_get_disjoint_contiguous_whole_segments_covering_the_dataset(world_size: int) -> None:
    samplers = [DistributedSampler(DATASET, world_size=world_size, rank=r) for r in range(world_size)]
    parts = [list(s) for s in samplers]
    assert sum(parts, []) == list(range(len(DATASET.flag)))
    for part in parts:
        if part:
            assert part == list(range(part[0], part[-1] + 1))
            first, last = DATASET.flag[part[0]], DATASET.flag[part[-1]]
            assert set(np.flatnonzero(np.isin(DATASET.flag, [first, last]))) <= set(part)
    assert samplers[0].rank_indices == [s.indices for s in samplers]
    assert [len(s) for s in samplers] == [len(p) for p in parts]


def test_cuts_balance_the_parts() -> None:
    assert contiguous_cuts(DATASET.flag, 2) == [0, 11, 20]
    assert contiguous_cuts(DATASET.flag, 1) == [0, 20]


def test_registry_and_bad_arguments() -> None:
    sampler = DATA_SAMPLERS.build(dict(type="DistributedSampler", dataset=DATASET, world_size=1, rank=0))
    assert list(sampler) == list(range(20))
    with pytest.raises(ValueError, match="shuffle"):
        DistributedSampler(DATASET, world_size=1, rank=0, shuffle=True)
    with pytest.raises(ValueError, match="flag"):
        DistributedSampler(SimpleNamespace(), world_size=1, rank=0)
