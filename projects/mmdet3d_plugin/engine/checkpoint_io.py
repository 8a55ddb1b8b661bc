"""Lightning checkpoint I/O through the project's atomic, ``weights_only`` checkpoint files."""
from __future__ import annotations

import os
from typing import Any, Callable

from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..core.checkpoint import read_checkpoint, save_checkpoint


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
