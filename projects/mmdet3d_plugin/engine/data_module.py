"""The Lightning data module: streaming training batches, ordered evaluation batches.

Resuming exactly (docs/training.md): training is iteration based and always "mid-epoch",
so the data position is saved in the checkpoint as the number of batches consumed, and
augmentation randomness is a pure function of ``(seed, draw number)`` instead of process
RNG state. A resumed run replays the sampler to the saved position (index arithmetic only)
and draws the same augmentations an uninterrupted run would have drawn, whatever the
number of loader workers or how far they had prefetched.
"""
from __future__ import annotations

import random
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..datasets.collate import collate_samples
from ..registry import DATA_SAMPLERS


class SeededDraws(Sampler[list[tuple[int, int]]]):
    """Wraps a streaming batch sampler: starts at batch ``start`` and numbers every draw.

    Yields batches of ``(dataset_index, draw_seed)``; ``draw_seed`` depends only on the
    base seed, the rank, the batch number and the slot. The wrapped sampler must offer
    ``seek(num_batches)``. The wrapper has no length, so Lightning treats training as one
    endless stream bounded by ``max_steps``.
    """

    def __init__(self, batch_sampler: Any, seed: int, rank: int, start: int = 0) -> None:
        self.batch_sampler = batch_sampler
        self.seed = int(seed)
        self.rank = int(rank)
        self.start = int(start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        self.batch_sampler.seek(self.start)
        for number, batch in enumerate(self.batch_sampler, start=self.start):
            yield [(int(index), self._draw_seed(number, slot)) for slot, index in enumerate(batch)]

    def _draw_seed(self, number: int, slot: int) -> int:
        mixed = np.random.SeedSequence([self.seed, self.rank, number, slot])
        return int(mixed.generate_state(1)[0])


class SeededDataset(Dataset):
    """Runs ``dataset[index]`` with python/numpy/torch RNGs seeded from the draw seed.

    The caller's RNG states are restored afterwards, so loading in the main process
    (``workers_per_gpu=0``) does not disturb the model's own randomness.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        if not isinstance(item, tuple):
            return self.dataset[item]
        index, seed = item
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            random.seed(seed)
            np.random.seed(seed % (2**32))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self.dataset[index]
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class StreamingDataModule(L.LightningDataModule):
    """Loaders over already built datasets.

    Args:
        train_set / val_set: built datasets (``None`` where not needed).
        train_sampler_cfg: the config's ``data.shuffler_sampler`` (the streaming sampler).
        val_sampler_cfg: the config's ``data.nonshuffler_sampler`` (ordered, whole scenes per rank).
        samples_per_gpu: training batch size per process.
        workers_per_gpu: loader worker processes per process.
        seed: base seed of the sampler and of the augmentation draws.
    """

    def __init__(
        self,
        train_set: Dataset | None,
        val_set: Dataset | None,
        train_sampler_cfg: Mapping[str, Any],
        val_sampler_cfg: Mapping[str, Any],
        samples_per_gpu: int,
        workers_per_gpu: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.train_set = train_set
        self.val_set = val_set
        self.train_sampler_cfg = dict(train_sampler_cfg)
        self.val_sampler_cfg = dict(val_sampler_cfg)
        self.samples_per_gpu = int(samples_per_gpu)
        self.workers_per_gpu = int(workers_per_gpu)
        self.seed = int(seed)
        self.consumed_batches = 0

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, dataset: Dataset, batch_sampler: Sampler) -> DataLoader:
        # A private generator: creating a loader iterator draws a base seed, which must not
        # come from (and shift) the global RNG the model's randomness uses.
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=self.workers_per_gpu,
            collate_fn=collate_samples,
            persistent_workers=self.workers_per_gpu > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            raise ValueError("No training dataset was built (data.train is missing from the config).")
        rank, world = self._rank_world()
        sampler = DATA_SAMPLERS.build(
            self.train_sampler_cfg,
            default_args=dict(dataset=self.train_set, batch_size=self.samples_per_gpu,
                              world_size=world, rank=rank, seed=self.seed),
        )
        draws = SeededDraws(sampler, self.seed, rank, start=self.consumed_batches)
        return self._loader(SeededDataset(self.train_set), draws)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []  # no data.val: training runs without periodic evaluation
        return self._ordered_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        if self.val_set is None:
            raise ValueError("No test dataset was built (data.test is missing from the config).")
        return self._ordered_loader(self.val_set)

    def _ordered_loader(self, dataset: Dataset) -> DataLoader:
        rank, world = self._rank_world()
        sampler = DATA_SAMPLERS.build(
            self.val_sampler_cfg,
            default_args=dict(dataset=dataset, world_size=world, rank=rank),
        )
        return self._loader(dataset, _single_batches(sampler))

    def state_dict(self) -> dict[str, Any]:
        trainer = getattr(self, "trainer", None)
        consumed = trainer.global_step if trainer is not None else self.consumed_batches
        return {"consumed_batches": int(consumed), "seed": self.seed}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if int(state_dict["seed"]) != self.seed:
            raise ValueError(
                f"The checkpoint was trained with seed {state_dict['seed']} but this run uses "
                f"{self.seed}; resume with --seed {state_dict['seed']} to continue exactly."
            )
        self.consumed_batches = int(state_dict["consumed_batches"])


def _single_batches(sampler: Sampler[int]) -> Sequence[list[int]]:
    """Batches of one index, in the sampler's order (evaluation walks scenes in time order).

    A rank left without samples (fewer scenes than ranks) gets sample 0, which rank 0 also
    evaluates: every rank must run at least one batch, and the gathered predictions keep the
    first prediction of each token (rank 0's).
    """
    batches = [[int(index)] for index in sampler]
    return batches or [[0]]
