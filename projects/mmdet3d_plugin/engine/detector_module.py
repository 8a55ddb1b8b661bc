"""The Lightning module that trains, validates and tests any detector built from a config."""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Mapping, Optional, Sequence

import lightning as L
import numpy as np
import torch
from torch import nn

from ..models.temporal.memory_queue import find_memory_queues
from .optim import build_optimizer, build_scheduler
from .runtime_config import RuntimeSpec

Evaluator = Callable[[Sequence[Mapping[str, Any]], Sequence[str]], Mapping[str, Any]]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; raised before the optimizer step."""


def _capture_rng() -> dict[str, Any]:
    """The torch / numpy / python RNG states as tensors and plain values."""
    mt_name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss), "name": mt_name},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(
        (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["gauss"])
    )
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _detach_prediction(pred: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().float().cpu() if key != "labels_3d" else value.detach().cpu()
            for key, value in pred.items()}


class DetectorModule(L.LightningModule):
    """Wraps a detector (or a distiller) for Lightning.

    Args:
        model: any module with ``forward(batch, mode='loss' | 'predict')`` (docs/data_contract.md).
        runtime: the parsed runtime sections of the config.
        evaluator: turns the validation predictions into metrics (the official nuScenes
            evaluator); ``None`` skips evaluation.

    The checkpoint's ``state_dict`` is the model's own state dict (no prefix), so engine
    checkpoints load into a plain detector and published checkpoints load here. Temporal
    state (memory queues) and RNG states travel in the checkpoint too, so a resumed run
    continues exactly.
    """

    def __init__(self, model: nn.Module, runtime: RuntimeSpec, evaluator: Evaluator | None = None) -> None:
        super().__init__()
        self.model = model
        self.runtime = runtime
        self.evaluator = evaluator
        self._val_outputs: list[tuple[str, dict[str, torch.Tensor]]] = []
        self._stashed_temporal: dict[str, Any] | None = None
        self._pending_rng: Mapping[str, Any] | None = None
        self.last_metrics: dict[str, Any] = {}

    def state_dict(self, destination: Optional[dict] = None, prefix: str = "",
                   keep_vars: bool = False) -> dict[str, Any]:
        """The wrapped model's state dict, without a ``model.`` prefix (see the class doc)."""
        return self.model.state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):  # noqa: D102
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One iteration: named losses → checked → summed → logged.

        A model with ``set_training_progress(step, max_steps)`` (the distiller) is told the
        iteration first, so scheduled losses follow the run, resumed runs included.
        """
        set_progress = getattr(self.model, "set_training_progress", None)
        if set_progress is not None:
            set_progress(self.global_step, self.runtime.schedule.max_iters)
        losses = self.model(batch, mode="loss")
        terms = {name: value for name, value in losses.items() if "loss" in name}
        if not terms:
            raise KeyError(f"The model returned no loss terms (keys: {sorted(losses)}).")
        bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
        if bad:
            raise NonFiniteLossError(
                f"Non-finite loss at iteration {self.global_step}: {', '.join(bad)} "
                f"= {[float(terms[name].detach()) for name in bad]}. Nothing was saved for this step; "
                "the last checkpoint is intact."
            )
        total = sum(terms.values())
        batch_size = int(batch["img"].shape[0]) if "img" in batch else 1
        self.log("loss", total.detach(), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=batch_size)
        self.log("lr", self.optimizers().param_groups[0]["lr"], prog_bar=True, batch_size=batch_size)
        return total

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.runtime.optimizer)
        scheduler = build_scheduler(optimizer, self.runtime.schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip by the config's ``grad_clip`` (max_norm, norm_type) after AMP unscaling; the
        norm before clipping is logged as ``train/grad_norm``."""
        if self.runtime.grad_clip_max_norm is None:
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(
            params, self.runtime.grad_clip_max_norm, norm_type=self.runtime.grad_clip_norm_type
        )
        self.log("train/grad_norm", norm.detach(), batch_size=1)

    def on_validation_epoch_start(self) -> None:
        self._stashed_temporal = self._temporal_state()
        self._reset_temporal()
        self._val_outputs = []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        predictions = self.model(batch, mode="predict")
        for token, pred in zip(batch["sample_idx"], predictions):
            self._val_outputs.append((token, _detach_prediction(pred)))

    def on_validation_epoch_end(self) -> None:
        outputs = self._gather(self._val_outputs)
        self._val_outputs = []
        metrics: dict[str, Any] = {}
        if self.evaluator is not None and self.trainer.is_global_zero and outputs:
            unique: dict[str, dict[str, torch.Tensor]] = {}
            for token, prediction in outputs:
                unique.setdefault(token, prediction)
            metrics = dict(self.evaluator(list(unique.values()), list(unique.keys())))
        metrics = self._broadcast(metrics)
        self.last_metrics = metrics
        scalars = {f"val/{k}": float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and math.isfinite(float(v))}
        if scalars:
            self.log_dict(scalars, rank_zero_only=True)
        self._reset_temporal()
        if self._stashed_temporal is not None:
            self._load_temporal_state(self._stashed_temporal)
            self._stashed_temporal = None

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = _capture_rng()
        checkpoint["temporal_state"] = self._temporal_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._pending_rng = checkpoint.get("rng_states")
        temporal = checkpoint.get("temporal_state")
        if temporal:
            self._load_temporal_state(temporal)

    def on_train_start(self) -> None:
        if self._pending_rng is not None:
            _restore_rng(self._pending_rng)
            self._pending_rng = None

    def _temporal_state(self) -> dict[str, Any]:
        return {name: queue.state() for name, queue in find_memory_queues(self.model).items()}

    def _load_temporal_state(self, state: Mapping[str, Any]) -> None:
        queues = find_memory_queues(self.model)
        unknown = sorted(set(state) - set(queues))
        if unknown:
            raise KeyError(f"The checkpoint holds memory for {unknown}, this model has {sorted(queues)}.")
        for name, queue in queues.items():
            queue.load_state(state.get(name, {}))

    def _reset_temporal(self) -> None:
        for queue in find_memory_queues(self.model).values():
            queue.reset()

    def _gather(self, local: list[Any]) -> list[Any]:
        if self.trainer.world_size <= 1:
            return local
        gathered: list[list[Any]] = [[] for _ in range(self.trainer.world_size)]
        torch.distributed.all_gather_object(gathered, local)
        return [item for part in gathered for item in part]

    def _broadcast(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if self.trainer.world_size <= 1:
            return metrics
        box = [metrics]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
