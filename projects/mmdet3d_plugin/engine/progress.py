"""The training progress bar: iterations out of ``runner.max_iters``, resumed runs included."""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class IterationProgressBar(TQDMProgressBar):
    """Counts optimizer steps up to ``trainer.max_steps`` instead of the batches of an epoch.

    Training is iteration based over a streaming sampler, so an epoch has no useful length.
    A run resumed at step ``k`` starts the bar at ``k`` (``initial``), so the rate and the
    ETA count only the iterations this process ran. Lightning does not call
    ``on_train_epoch_start`` when it resumes mid-epoch (always, for iteration-based training),
    so the bar is also set up in ``on_train_start``.
    """

    def on_train_start(self, trainer: L.Trainer, *_: Any) -> None:
        super().on_train_start(trainer)
        self._count_steps(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        super().on_train_epoch_start(trainer)
        self._count_steps(trainer)

    def _count_steps(self, trainer: L.Trainer) -> None:
        """Total ``max_steps``, starting (and counting the rate) from the current step."""
        bar = self.train_progress_bar
        bar.total = trainer.max_steps
        bar.initial = trainer.global_step
        bar.n = trainer.global_step
        bar.last_print_n = trainer.global_step
        bar.set_description("Iterations")
        bar.refresh()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        bar = self.train_progress_bar
        step = trainer.global_step
        if bar is not None and self._should_update(step, bar.total):
            bar.n = step
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))
