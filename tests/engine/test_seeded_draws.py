"""Deterministic augmentation draws and resumable data positions."""
from __future__ import annotations

import random

import numpy as np
import torch

from projects.mmdet3d_plugin.engine.data_module import SeededDataset, SeededDraws


class RandomDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int):
        return (index, random.random(), float(np.random.rand()), float(torch.rand(())))


class ListBatches:
    """A finite batch sampler with the ``seek`` of the streaming sampler."""

    def __init__(self) -> None:
        self.batches = [[0, 1], [2, 3], [4, 5], [6, 7]]
        self.position = 0

    def seek(self, num_batches: int) -> None:
        self.position = num_batches

    def __iter__(self):
        return iter(self.batches[self.position:])


def batches():
    return ListBatches()


def test_skip_continues_with_identical_draws():
    full = list(SeededDraws(batches(), seed=3, rank=0))
    resumed = list(SeededDraws(batches(), seed=3, rank=0, start=2))
    assert resumed == full[2:]
    assert len({seed for batch in full for _, seed in batch}) == 8


def test_rank_and_seed_change_the_draws():
    base = list(SeededDraws(batches(), seed=3, rank=0))
    assert base != list(SeededDraws(batches(), seed=3, rank=1))
    assert base != list(SeededDraws(batches(), seed=4, rank=0))


def test_seeded_dataset_is_a_pure_function_of_the_draw_and_restores_rngs():
    data = SeededDataset(RandomDataset())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    expected_next = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    first = data[(1, 1234)]
    assert data[(1, 1234)] == first
    assert data[(1, 999)] != first
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected_next
