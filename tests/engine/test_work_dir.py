"""The work dir across runs: no false "not empty" warning on a fresh run, fragments of killed
saves removed, a real warning before writing over checkpoints, and a progress bar counting
iterations to max_iters from the resumed step."""
from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv, build_trainer, latest_checkpoint

CPU = LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1)


class _Linear(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(torch.randn(64, 2), batch_size=1)


class _BarState(L.Callback):
    """Records (total, initial, n) of the training progress bar after every batch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def on_train_batch_end(self, trainer: L.Trainer, *_) -> None:
        bar = trainer.progress_bar_callback.train_progress_bar
        self.seen.append((bar.total, bar.initial, bar.n))


def _fit(work_dir: Path, max_iters: int, resume: bool = False, callbacks=()) -> list[str]:
    """Fit ``_Linear`` with the engine's trainer; returns the warnings raised."""
    runtime = parse_runtime(dict(optimizer=dict(type="SGD", lr=0.1), log_config=dict(interval=1),
                                 runner=dict(type="IterBasedRunner", max_iters=max_iters),
                                 checkpoint_config=dict(interval=2), evaluation=dict(interval=0)))
    trainer = build_trainer(runtime, work_dir, env=CPU, extra_callbacks=callbacks)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_Linear(), ckpt_path=str(latest_checkpoint(work_dir)) if resume else None)
    return [str(w.message) for w in caught]


def test_fresh_run_next_to_config_and_logs_gives_no_not_empty_warning(tmp_path):
    (tmp_path / "tiny_raydn.py").write_text("model = dict()\n")  # the config copy
    (tmp_path / "logs").mkdir()
    said = _fit(tmp_path, 2)
    assert not [m for m in said if "exists and is not empty" in m], said
    assert latest_checkpoint(tmp_path).is_file()


def test_fresh_run_over_old_checkpoints_is_warned(tmp_path):
    _fit(tmp_path, 2)
    said = _fit(tmp_path, 2)
    assert [m for m in said if "already holds checkpoints" in m and "--resume" in m], said


def test_fragments_of_killed_saves_are_removed_on_start(tmp_path):
    fragments = [tmp_path / ".iter_4.pth.k2j4x9_a.tmp", tmp_path / ".latest.pth.abcdefgh.tmp"]
    others = [tmp_path / "notes.tmp", tmp_path / ".other.pth.tmp", tmp_path / ".iter_4.pth.short.tmp"]
    for path in fragments + others:
        path.write_bytes(b"partial")
    _fit(tmp_path, 2)
    assert not any(p.exists() for p in fragments) and all(p.exists() for p in others)


def test_resumed_progress_bar_counts_from_the_resumed_step_to_max_iters(tmp_path):
    _fit(tmp_path, 2)
    bar = _BarState()
    _fit(tmp_path, 5, resume=True, callbacks=[bar])
    assert bar.seen[0][:2] == (5, 2) and bar.seen[-1] == (5, 2, 5)


@pytest.mark.parametrize("name", ["_ModelCheckpoint__warn_if_dir_not_empty"])
def test_the_replaced_lightning_check_still_exists(name):
    from lightning.pytorch.callbacks import ModelCheckpoint

    assert hasattr(ModelCheckpoint, name), "Lightning renamed its check: WorkDirCheckpoint must follow"
