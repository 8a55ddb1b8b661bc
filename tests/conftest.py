"""Shared fixtures: one tiny generated nuScenes world and its info files per test session."""
from __future__ import annotations

from pathlib import Path

from typing import Callable

import lightning as L
import pytest
import torch

# Tests run on 2-core CPU machines next to other work: keep intra-op threads modest.
torch.set_num_threads(2)

# Seed 2: its single val scene shows all ten classes with LiDAR points (in the seed-0 world
# every bicycle and cone of the val scene hides behind buses, so the devkit drops them), and
# none of its stationary vehicles carries an attribute the speed rule cannot tell apart
# (stopped vs parked), so ground truth scores mAP = NDS = 1 there.
TINY_WORLD = dict(
    version="v1.0-mini",
    train_scenes=2,
    val_scenes=1,
    samples_per_scene=4,
    image_size=(400, 225),
    seed=2,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def synthetic_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny generated nuScenes world (2 train + 1 val scene, 4 samples each)."""
    from projects.mmdet3d_plugin.datasets.synthetic.generator import generate_world

    root = tmp_path_factory.mktemp("nuscenes")
    return generate_world(root, **TINY_WORLD)


@pytest.fixture(scope="session")
def synthetic_infos(synthetic_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Temporal info files of :func:`synthetic_world`, keyed by split (``train``, ``val``)."""
    from projects.mmdet3d_plugin.datasets.nuscenes_converter import create_nuscenes_infos

    out_dir = tmp_path_factory.mktemp("infos")
    return create_nuscenes_infos(
        synthetic_world, out_dir, extra_tag="nuscenes2d", version=TINY_WORLD["version"]
    )


class _KillAt(L.Callback):
    """Crashes a run after iteration ``step``: nothing after the last checkpoint survives."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


@pytest.fixture
def kill_at() -> Callable[[int], L.Callback]:
    """``kill_at(step)``: a callback raising ``RuntimeError('killed')`` after iteration ``step``."""
    return _KillAt
