"""Lightning checkpoint I/O through the project's atomic, ``weights_only`` checkpoint files,
and the checkpoint callback writing them into the work dir."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from ..core.checkpoint import SAVE_FRAGMENT_REGEX, read_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves with :func:`core.checkpoint.save_checkpoint` (temporary file, fsync, rename), so a
    run killed while saving leaves the previous checkpoint intact, and loads with
    :func:`core.checkpoint.read_checkpoint` (``weights_only=True``; a truncated file is a
    ``CheckpointError`` naming it). Engine checkpoints hold only tensors and plain values.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options.")
        save_checkpoint(checkpoint, path)

    def load_checkpoint(
        self,
        path: str | os.PathLike,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location)


def save_fragments(folder: str | os.PathLike, suffix: str) -> list[Path]:
    """The temporary files a save of a ``*<suffix>`` checkpoint left in ``folder`` when the
    process died while saving (``.iter_8.pth.k2j4x9_a.tmp``); other files never match."""
    regex = re.compile(SAVE_FRAGMENT_REGEX.format(name=rf".+{re.escape(suffix)}"))
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and regex.fullmatch(p.name))


class WorkDirCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` writing ``iter_{step}.pth`` and ``latest.pth`` into the work dir.

    The work dir also holds the config copy and the logs, so Lightning's check ("directory
    exists and is not empty") would fire on every fresh run. It is replaced by the check it
    stands for: a fresh run (no checkpoint to resume from) into a work dir that already holds
    checkpoints is warned that it writes over them. Before a fit, the temporary files of
    saves killed midway (:func:`save_fragments`) are removed.
    """

    _fresh_fit: bool = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._fresh_fit = stage == "fit" and trainer.ckpt_path is None
        if stage == "fit" and trainer.is_global_zero and self.dirpath is not None:
            for fragment in save_fragments(self.dirpath, self.FILE_EXTENSION):
                logger.info("removing %s, left by a save that was killed midway", fragment)
                fragment.unlink(missing_ok=True)
        super().setup(trainer, pl_module, stage)

    def _ModelCheckpoint__warn_if_dir_not_empty(self, dirpath: str | os.PathLike) -> None:
        """Replaces Lightning's private check of the same name (called by ``setup``)."""
        folder = Path(dirpath)
        if not self._fresh_fit or not folder.is_dir():
            return
        found = sorted(p.name for p in folder.glob(f"*{self.FILE_EXTENSION}")
                       if p.stem == self.CHECKPOINT_NAME_LAST or p.name.startswith(self._step_prefix()))
        if found:
            rank_zero_warn(
                f"Work dir {folder} already holds checkpoints {found[:5]} and this run starts "
                f"fresh: it will write over them. Pass --resume to continue that run, or choose "
                f"another --work-dir.")

    def _step_prefix(self) -> str:
        """``'iter_'`` for the filename template ``'iter_{step}'``."""
        return (self.filename or "").split("{", 1)[0] or "\0"
