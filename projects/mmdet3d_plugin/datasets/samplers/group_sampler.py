"""Streaming batch sampler: every batch slot walks one scene segment in temporal order.

The segments (``dataset.flag``) form an endless stream: round ``e`` of the stream is a
permutation of all segments drawn from ``numpy.random.default_rng([seed, e])``. Global slot
``s = rank * batch_size + k`` (of ``G = batch_size * world_size``) takes the stream positions
``s, s + G, s + 2G, ...``: it walks the segment at its position from first to last frame, then
moves on to its next position. So in every round the segments are spread over the slots of all
ranks without overlap, and the whole run is a pure function of the seed.

The sampler is stateful: its position (per slot: stream position and cursor in the segment)
is what ``state_dict()`` saves and ``load_state_dict()`` restores, so a resumed run yields
exactly the batches the uninterrupted run would have. ``seek(n)`` puts it where it is after
``n`` batches (use it when a DataLoader prefetched batches the model never consumed).
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from ...registry import DATA_SAMPLERS
from .dist_info import dataset_flag, resolve_rank


@DATA_SAMPLERS.register_module()
class InfiniteGroupEachSampleInBatchSampler(Sampler[list[int]]):
    """Endless batches of dataset indices, one scene segment per batch slot.

    Args:
        dataset: a dataset with ``flag`` (N,) (segment id per index, equal ids contiguous and in
            temporal order, e.g. ``CustomNuScenesDataset``).
        batch_size: samples per batch on this rank.
        world_size: number of ranks (default: torch.distributed's world size, or 1).
        rank: this rank (default: torch.distributed's rank, or 0).
        seed: shuffling seed, identical on all ranks.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        world_size: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.rank, self.world_size = resolve_rank(world_size, rank)
        self.batch_size = batch_size
        self.seed = int(seed)
        flag = dataset_flag(dataset, type(self).__name__)
        self.dataset_size = len(flag)
        order = np.argsort(flag, kind="stable")
        starts = np.flatnonzero(np.diff(flag[order])) + 1
        self.segments = [part.tolist() for part in np.split(order, starts)] if len(flag) else []
        self.global_batch_size = batch_size * self.world_size
        if len(self.segments) < self.global_batch_size:
            raise ValueError(
                f"{len(self.segments)} segments cannot feed {self.global_batch_size} batch slots "
                f"(batch_size={batch_size} x world_size={self.world_size}); use fewer slots or more "
                f"segments (seq_split_num)"
            )
        self._permutations: dict[int, np.ndarray] = {}
        self.seek(0)

    def seek(self, num_batches: int) -> None:
        """Put the sampler where it is after ``num_batches`` batches from the start."""
        if num_batches < 0:
            raise ValueError(f"num_batches must be >= 0, got {num_batches}")
        first_slot = self.rank * self.batch_size
        self.positions = [first_slot + k for k in range(self.batch_size)]
        self.cursors = [0] * self.batch_size
        self.num_batches = 0
        for _ in range(num_batches):
            self.next_batch()

    def segment_at(self, position: int) -> int:
        """Segment (index into ``self.segments``) at a stream position."""
        epoch, offset = divmod(position, len(self.segments))
        if epoch not in self._permutations:
            self._permutations[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.segments))
            lowest = min(self.positions) // len(self.segments)
            for stale in [e for e in self._permutations if e < lowest]:
                del self._permutations[stale]
        return int(self._permutations[epoch][offset])

    def next_batch(self) -> list[int]:
        """The next batch: one dataset index per slot, advancing every slot by one frame."""
        batch = []
        for k in range(self.batch_size):
            segment = self.segments[self.segment_at(self.positions[k])]
            batch.append(segment[self.cursors[k]])
            self.cursors[k] += 1
            if self.cursors[k] == len(segment):
                self.positions[k] += self.global_batch_size
                self.cursors[k] = 0
        self.num_batches += 1
        return batch

    def __iter__(self) -> Iterator[list[int]]:
        """Endless batches, continuing from the current position."""
        while True:
            yield self.next_batch()

    def __len__(self) -> int:
        """Batches per nominal epoch on this rank: ``ceil(len(dataset) / (batch_size * world_size))``."""
        return math.ceil(self.dataset_size / self.global_batch_size)

    @property
    def epoch(self) -> int:
        """Stream round of the segment slot 0 walks now."""
        return self.positions[0] // len(self.segments)

    def state_dict(self) -> dict[str, Any]:
        """The exact position: per-slot stream positions and cursors, plus what they depend on."""
        return {
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "num_segments": len(self.segments),
            "dataset_size": self.dataset_size,
            "epoch": self.epoch,
            "num_batches": self.num_batches,
            "positions": list(self.positions),
            "cursors": list(self.cursors),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of a sampler built with the same arguments."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        if missing:
            raise KeyError(f"sampler state lacks {missing}; expected keys {sorted(expected)}")
        for key in ("seed", "rank", "world_size", "batch_size", "num_segments", "dataset_size"):
            if state[key] != expected[key]:
                raise ValueError(
                    f"sampler state has {key}={state[key]!r} but this sampler has {key}={expected[key]!r}; "
                    f"resume with the same dataset, seed, batch size and world size"
                )
        if len(state["positions"]) != self.batch_size or len(state["cursors"]) != self.batch_size:
            raise ValueError(f"sampler state must hold {self.batch_size} positions and cursors")
        self.positions = [int(p) for p in state["positions"]]
        self.cursors = [int(c) for c in state["cursors"]]
        self.num_batches = int(state["num_batches"])
        self._permutations.clear()
