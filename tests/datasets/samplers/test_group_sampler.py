"""InfiniteGroupEachSampleInBatchSampler: order within segments, coverage, ranks, resume."""
from __future__ import annotations

import itertools
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from torch.utils.data import DataLoader

from projects.mmdet3d_plugin.datasets.samplers.group_sampler import InfiniteGroupEachSampleInBatchSampler
from projects.mmdet3d_plugin.registry import DATA_SAMPLERS

# 7 segments of uneven lengths (3, 5, 2, 4, 1, 6, 3), contiguous as a dataset lays them out.
SEGMENT_LENGTHS = (3, 5, 2, 4, 1, 6, 3)
DATASET = SimpleNamespace(flag=np.repeat(np.arange(len(SEGMENT_LENGTHS)), SEGMENT_LENGTHS))


def take(sampler: InfiniteGroupEachSampleInBatchSampler, n: int) -> list[list[int]]:
    return list(itertools.islice(iter(sampler), n))


def slot_streams(batches: list[list[int]]) -> list[list[int]]:
    return [list(column) for column in zip(*batches)]


def split_into_walks(stream: list[int]) -> list[list[int]]:
    """Cut a slot's index stream wherever the segment changes or a segment restarts."""
    walks: list[list[int]] = []
    for index in stream:
        if walks and DATASET.flag[index] == DATASET.flag[walks[-1][-1]] and index == walks[-1][-1] + 1:
            walks[-1].append(index)
        else:
            walks.append([index])
    return walks


def test_each_slot_walks_whole_segments_in_temporal_order() -> None:
    sampler = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=1, rank=0, seed=3)
    batches = take(sampler, 60)
    assert all(len(batch) == 2 for batch in batches)
    for stream in slot_streams(batches):
        walks = split_into_walks(stream)
        for walk in walks[:-1]:  # the last walk may still be in progress
            segment = np.flatnonzero(DATASET.flag == DATASET.flag[walk[0]]).tolist()
            assert walk == segment


def test_one_round_partitions_all_segments_over_the_slots_of_all_ranks() -> None:
    per_slot_first_segments = []
    for rank in range(2):
        sampler = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=2, rank=rank, seed=5)
        for k in range(2):
            positions = range(sampler.positions[k], len(SEGMENT_LENGTHS), 4)
            per_slot_first_segments.append({sampler.segment_at(p) for p in positions})
    union = set().union(*per_slot_first_segments)
    assert union == set(range(len(SEGMENT_LENGTHS)))
    assert sum(len(s) for s in per_slot_first_segments) == len(SEGMENT_LENGTHS)
    firsts = []
    for rank in range(2):
        sampler = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=2, rank=rank, seed=5)
        firsts.extend(int(DATASET.flag[i]) for i in sampler.next_batch())
    assert len(set(firsts)) == 4


def test_stream_covers_the_dataset_and_depends_on_the_seed() -> None:
    sampler = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=1, world_size=1, rank=0, seed=0)
    indices = [batch[0] for batch in take(sampler, len(DATASET.flag))]
    assert sorted(indices) == list(range(len(DATASET.flag)))
    other = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=1, world_size=1, rank=0, seed=1)
    assert [b[0] for b in take(other, len(DATASET.flag))] != indices
    assert len(sampler) == len(DATASET.flag)


def test_state_dict_round_trip_continues_identically() -> None:
    reference = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=2, rank=1, seed=7)
    uninterrupted = take(reference, 40)

    first = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=2, rank=1, seed=7)
    iterator = iter(first)
    head = [next(iterator) for _ in range(13)]
    state = pickle.loads(pickle.dumps(first.state_dict()))
    assert state["num_batches"] == 13

    resumed = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=2, rank=1, seed=7)
    resumed.load_state_dict(state)
    assert head + take(resumed, 27) == uninterrupted

    sought = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=2, rank=1, seed=7)
    sought.seek(13)
    assert sought.state_dict() == state


def test_works_as_a_dataloader_batch_sampler_and_builds_from_the_registry() -> None:
    sampler = DATA_SAMPLERS.build(
        dict(type="InfiniteGroupEachSampleInBatchSampler", dataset=DATASET, batch_size=2, world_size=1, rank=0)
    )
    loader = DataLoader(list(range(len(DATASET.flag))), batch_sampler=sampler)
    batches = [batch.tolist() for batch in itertools.islice(loader, 5)]
    assert batches == take(InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=2, world_size=1, rank=0), 5)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="segments cannot feed"):
        InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=4, world_size=2, rank=0)
    with pytest.raises(ValueError, match="flag"):
        InfiniteGroupEachSampleInBatchSampler(SimpleNamespace(), batch_size=1)
    with pytest.raises(ValueError, match="rank"):
        InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=1, world_size=2, rank=2)
    sampler = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=1, world_size=1, rank=0, seed=0)
    state = sampler.state_dict()
    other = InfiniteGroupEachSampleInBatchSampler(DATASET, batch_size=1, world_size=1, rank=0, seed=9)
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(state)
    with pytest.raises(KeyError, match="cursors"):
        sampler.load_state_dict({k: v for k, v in state.items() if k != "cursors"})
