"""Build the Lightning ``Trainer`` from a config's runtime sections and the launch environment.

Launched by ``torchrun`` (``WORLD_SIZE`` > 1) the trainer runs DDP: NCCL on GPUs, gloo on
CPU processes. Precision follows the config's :class:`~.precision.PrecisionSpec` (float32
unless the config names the fp16 hook or ``precision``; see ``precision.py``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

from .checkpoint_io import AtomicCheckpointIO, WorkDirCheckpoint
from .precision import precision_plugins
from .progress import IterationProgressBar
from .runtime_config import RuntimeSpec

LATEST_NAME = "latest"
CHECKPOINT_SUFFIX = ".pth"


@dataclass(frozen=True)
class LaunchEnv:
    """Where and how this process runs."""

    accelerator: str
    devices: int
    num_nodes: int
    world_size: int

    @classmethod
    def detect(cls, force_cpu: bool = False) -> "LaunchEnv":
        """Read ``torchrun``'s variables; one process on one device otherwise."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        use_gpu = torch.cuda.is_available() and not force_cpu
        return cls(
            accelerator="gpu" if use_gpu else "cpu",
            devices=local_world,
            num_nodes=max(world // max(local_world, 1), 1),
            world_size=world,
        )


def latest_checkpoint(work_dir: str | Path) -> Path:
    """Path of the rolling latest checkpoint of a work dir."""
    return Path(work_dir) / f"{LATEST_NAME}{CHECKPOINT_SUFFIX}"


def _checkpoint_callback(work_dir: Path, runtime: RuntimeSpec) -> WorkDirCheckpoint:
    callback = WorkDirCheckpoint(
        dirpath=work_dir,
        filename="iter_{step}",
        auto_insert_metric_name=False,
        every_n_train_steps=runtime.checkpoint_interval,
        save_top_k=runtime.max_keep_ckpts if runtime.max_keep_ckpts > 0 else -1,
        monitor="step",
        mode="max",
        save_last=True,
        save_on_train_epoch_end=False,
    )
    callback.CHECKPOINT_NAME_LAST = LATEST_NAME
    callback.FILE_EXTENSION = CHECKPOINT_SUFFIX
    return callback


def build_trainer(
    runtime: RuntimeSpec,
    work_dir: str | Path,
    *,
    env: LaunchEnv | None = None,
    deterministic: bool = False,
    find_unused_parameters: bool = False,
    enable_progress_bar: bool = True,
    extra_callbacks: Sequence[L.Callback] = (),
) -> L.Trainer:
    """A trainer for ``runtime.schedule.max_iters`` iterations writing into ``work_dir``."""
    env = env or LaunchEnv.detect()
    work_dir = Path(work_dir)
    strategy: str | DDPStrategy = "auto"
    if env.world_size > 1:
        strategy = DDPStrategy(
            process_group_backend="nccl" if env.accelerator == "gpu" else "gloo",
            find_unused_parameters=find_unused_parameters,
        )
    precision = runtime.precision.on_device(env.accelerator)
    callbacks: list[L.Callback] = [_checkpoint_callback(work_dir, runtime)]
    if enable_progress_bar:
        callbacks.append(IterationProgressBar(refresh_rate=max(1, min(runtime.log_interval, 10))))
    callbacks.extend(extra_callbacks)
    return L.Trainer(
        accelerator=env.accelerator,
        devices=env.devices,
        num_nodes=env.num_nodes,
        strategy=strategy,
        max_steps=runtime.schedule.max_iters,
        max_epochs=-1,
        val_check_interval=runtime.eval_interval or runtime.schedule.max_iters,
        limit_val_batches=None if runtime.eval_interval else 0,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        log_every_n_steps=runtime.log_interval,
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO(), *precision_plugins(precision, "cuda" if env.accelerator == "gpu" else "cpu")],
        callbacks=callbacks,
        logger=[CSVLogger(work_dir, name="logs"), TensorBoardLogger(work_dir, name="tensorboard")],
        default_root_dir=work_dir,
        deterministic=deterministic,
        enable_progress_bar=enable_progress_bar,
        enable_model_summary=False,
    )
