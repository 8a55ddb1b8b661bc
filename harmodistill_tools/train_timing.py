"""Timing a training step part by part: shared by ``tools/benchmark_train.py`` and
``tools/benchmark_distill.py``.

A step is split into parts that add up to it:

* ``data_wait``: blocked on the loader's next batch (its workers prefetch meanwhile);
* ``h2d``: the batch's tensors copied to the device;
* ``forward``: ``model(batch, mode='loss')`` and the sum of its ``loss*`` terms, itself split into
  ``teacher_forward`` (distillers: the frozen teacher's predict), ``backbone_neck``
  (the student's ``img_backbone`` + ``img_neck``), ``head_forward`` (``pts_bbox_head`` and the
  2D auxiliary ``img_roi_head`` forwards), ``loss`` (the heads' ``loss`` methods: target
  building, assignment, loss terms), ``distill_losses`` (distillers: adapters and
  distillation loss modules) and ``forward_other`` (the rest: grid mask, reshapes, pseudo
  labels, taps);
* ``backward``: ``zero_grad`` + ``backward`` (through the loss scaler with fp16);
* ``optimizer``: unscale (fp16), grad clip (the config's ``grad_clip``), step, lr schedule.

``assign`` (the heads' assigners' ``assign`` calls and their batched ``assign_layers`` /
``assign_images``: costs and matching) is reported as a part *of* ``loss``.
Module parts are timed with :class:`~harmodistill_tools.benchmarking.StageTimer` hooks,
method parts (``loss``, ``assign``, distillation losses) by wrapping the bound methods for the
run (:class:`MethodTimer`). On CUDA the device is synchronised at every boundary.
"""
from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from harmodistill_tools.benchmarking import StageTimer, dataset_available, move_to_device
from projects.mmdet3d_plugin.kd.distillers import HarmoDistiller
from projects.mmdet3d_plugin.kd.distillers.detector_configs import load_detector_config
from projects.mmdet3d_plugin.registry import MODELS

STEP_PARTS = ("data_wait", "h2d", "forward", "backward", "optimizer")
FORWARD_PARTS = ("teacher_forward", "backbone_neck", "head_forward", "loss", "distill_losses", "forward_other")
LOSS_PARTS = ("assign",)
_HEADS = ("pts_bbox_head", "img_roi_head")
_ASSIGNERS = ("assigner", "assigner2d")
#: The assigners' methods timed as ``assign``: one matrix, and the batched paths.
_ASSIGN_METHODS = ("assign", "assign_layers", "assign_images")


def loss_total(losses: Mapping[str, Tensor]) -> Tensor:
    """Sum of the entries whose key contains ``loss`` (the engine's training objective)."""
    terms = [value for name, value in losses.items() if "loss" in name]
    if not terms:
        raise KeyError(f"the model returned no loss terms (keys: {sorted(losses)})")
    return sum(terms)


def is_distiller_config(cfg: Any) -> bool:
    """Whether the config's model is a :class:`HarmoDistiller`."""
    model_type = cfg.model.get("type")
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    return isinstance(cls, type) and issubclass(cls, HarmoDistiller)


def require_training_data(cfg: Any) -> None:
    """Raise ``FileNotFoundError`` (saying how to get it) when ``data.train`` cannot be read."""
    missing = dataset_available(cfg.data.get("train", {})) if "train" in cfg.data else "the config has no data.train"
    if missing is not None:
        raise FileNotFoundError(f"a training step needs the training data with ground truth: {missing}; "
                                "generate it (tools/create_synthetic_nuscenes.py, tools/create_data_nusc.py) "
                                "or point data.train.ann_file / data_root at it with --cfg-options")


def add_teacher_options(parser: argparse.ArgumentParser) -> None:
    """``--teacher-ckpt`` and ``--random-teacher``, the inputs of :func:`teacher_checkpoint`."""
    parser.add_argument("--teacher-ckpt", default=None,
                        help="distillers: teacher weights (overrides model.teacher_ckpt)")
    parser.add_argument("--random-teacher", action="store_true",
                        help="distillers: if the teacher checkpoint is missing, use a freshly built (untrained) "
                             "teacher")


def teacher_checkpoint(cfg: Any, override: Optional[str], random_teacher: bool, tmp_dir: Path) -> tuple[str, str]:
    """The teacher checkpoint of a distiller config and a description of it.

    ``override`` (``--teacher-ckpt``) or ``model.teacher_ckpt``; when that file is missing and
    ``random_teacher`` is set, a freshly built teacher is saved under ``tmp_dir``.
    """
    path = override or cfg.model.get("teacher_ckpt")
    if path and Path(path).is_file():
        return str(path), f"trained weights from {path}"
    if not random_teacher:
        raise FileNotFoundError(f"teacher checkpoint not found: {path!r}; give one with --teacher-ckpt, or "
                                "pass --random-teacher to time with an untrained teacher")
    teacher = MODELS.build(load_detector_config(cfg.model.teacher_cfg, "teacher").model)
    out = tmp_dir / "random_teacher.pth"
    torch.save(teacher.state_dict(), out)
    return str(out), f"UNTRAINED (random weights, --random-teacher; {path!r} is missing)"


def clip_and_step(optimizer: torch.optim.Optimizer, max_norm: Optional[float], norm_type: float,
                  scaler: Optional[torch.amp.GradScaler] = None) -> None:
    """The engine's optimizer step: unscale (fp16), clip by ``max_norm`` (if any), step, update."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if max_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


class MethodTimer:
    """Wall time inside wrapped methods of objects, accumulated per part and step.

    ``targets``: part -> ``(object, method name)`` pairs. Inside ``with`` each method is
    replaced by a timing wrapper on the instance (the original is restored on exit); nested
    calls of one part count once.
    """

    def __init__(self, targets: Mapping[str, Sequence[tuple[object, str]]], sync: Callable[[], None]) -> None:
        self.targets = {part: list(pairs) for part, pairs in targets.items()}
        self.sync = sync
        self._totals = {part: 0.0 for part in self.targets}
        self._depth = {part: 0 for part in self.targets}
        self._saved: list[tuple[object, str, Any]] = []

    def __enter__(self) -> "MethodTimer":
        for part, pairs in self.targets.items():
            for obj, name in pairs:
                self._saved.append((obj, name, vars(obj).get(name)))
                setattr(obj, name, self._wrap(part, getattr(obj, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for obj, name, own in reversed(self._saved):
            if own is None:
                delattr(obj, name)
            else:
                setattr(obj, name, own)
        self._saved.clear()

    def _wrap(self, part: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth[part]:
                return method(*args, **kwargs)
            self.sync()
            start = time.perf_counter()
            self._depth[part] += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth[part] -= 1
                self.sync()
                self._totals[part] += time.perf_counter() - start
        return timed

    def pop(self) -> dict[str, float]:
        """Seconds per part since the last :meth:`pop`, and reset."""
        totals = dict(self._totals)
        self._totals = {part: 0.0 for part in self.targets}
        return totals


def trained_detector(model: nn.Module) -> nn.Module:
    """The detector whose parts are timed: a distiller's student, else ``model`` itself."""
    return model.student if isinstance(model, HarmoDistiller) else model


def _stage_map(detector: nn.Module) -> dict[str, str]:
    """Stage -> submodule attribute of the hooked forward parts present in ``detector``."""
    optional = {"neck": "img_neck", "aux_2d_forward": "img_roi_head"}
    stages = {"backbone": "img_backbone", "head_forward": "pts_bbox_head"}
    stages.update({stage: attr for stage, attr in optional.items()
                   if isinstance(getattr(detector, attr, None), nn.Module)})
    return stages


def _method_targets(model: nn.Module, detector: nn.Module) -> dict[str, list[tuple[object, str]]]:
    """The wrapped methods per part: heads' ``loss``, assigners' ``assign`` (and batched
    variants), distillation losses."""
    heads = [head for head in (getattr(detector, name, None) for name in _HEADS) if isinstance(head, nn.Module)]
    targets = {
        "loss": [(head, "loss") for head in heads],
        "assign": [(assigner, method) for head in heads for assigner in
                   (getattr(head, name, None) for name in _ASSIGNERS)
                   for method in _ASSIGN_METHODS if hasattr(assigner, method)],
    }
    if isinstance(model, HarmoDistiller):
        targets["distill_losses"] = [(module, "forward") for module in
                                     (*model.adapters.values(), *model.distill_losses.values())]
    return targets


class TrainStepTimer:
    """Runs and times training steps of a detector or a distiller (see the module docstring).

    Args:
        model: the trained module (train mode, on ``device``).
        optimizer / scheduler: built from the config (``engine.optim``).
        grad_clip: ``(max_norm or None, norm_type)`` of the config.
        device: where the model runs.
        sync: device synchroniser (:func:`~harmodistill_tools.benchmarking.synchronizer`).
        autocast_dtype: ``None`` (no autocast over the forward) or the autocast dtype.
        scaler: the fp16 loss scaler, or ``None``.
        max_iters: the schedule length, for distillers' ``set_training_progress``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                 grad_clip: tuple[Optional[float], float], device: torch.device, sync: Callable[[], None],
                 autocast_dtype: Optional[torch.dtype], scaler: Optional[torch.amp.GradScaler],
                 max_iters: int) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.grad_clip, self.device, self.sync = grad_clip, device, sync
        self.autocast_dtype, self.scaler, self.max_iters = autocast_dtype, scaler, max_iters
        self.is_distiller = isinstance(model, HarmoDistiller)
        detector = trained_detector(model)
        self._stages = StageTimer(detector, sync, _stage_map(detector))
        self._teacher = StageTimer(model, sync, {"teacher_forward": "teacher"}) if self.is_distiller else None
        self._methods = MethodTimer(_method_targets(model, detector), sync)
        self.steps_run = 0

    @contextlib.contextmanager
    def timing(self) -> Iterator["TrainStepTimer"]:
        """The hooks and method wrappers are in place inside this block only."""
        with contextlib.ExitStack() as stack:
            for timer in (self._stages, self._teacher, self._methods):
                if timer is not None:
                    stack.enter_context(timer)
            yield self

    def _forward_context(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def step(self, batches: Iterator[Mapping[str, Any]]) -> tuple[dict[str, float], int]:
        """One training step on the loader's next batch (call inside :meth:`timing`).

        Returns:
            seconds per part (:data:`STEP_PARTS`, :data:`FORWARD_PARTS`, :data:`LOSS_PARTS`
            and ``step``), and the number of samples in the batch.
        """
        set_progress = getattr(self.model, "set_training_progress", None)
        if set_progress is not None:
            set_progress(self.steps_run, self.max_iters)
        self.sync()
        marks = [time.perf_counter()]
        batch = next(batches)
        marks.append(time.perf_counter())
        batch = move_to_device(batch, self.device)
        self.sync()
        marks.append(time.perf_counter())
        with self._forward_context():
            total = loss_total(self.model(batch, mode="loss"))
        self.sync()
        marks.append(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(total) if self.scaler is not None else total).backward()
        self.sync()
        marks.append(time.perf_counter())
        clip_and_step(self.optimizer, *self.grad_clip, scaler=self.scaler)
        self.scheduler.step()
        self.sync()
        marks.append(time.perf_counter())
        self.steps_run += 1
        parts = {name: end - start for name, start, end in zip(STEP_PARTS, marks, marks[1:])}
        parts["step"] = marks[-1] - marks[0]
        parts.update(self._forward_parts(parts["forward"]))
        return parts, int(batch["img"].shape[0])

    def _forward_parts(self, forward: float) -> dict[str, float]:
        """The forward split (:data:`FORWARD_PARTS`) and ``assign``, from the timers' totals."""
        stages = self._stages.pop()
        methods = self._methods.pop()
        parts = {
            "teacher_forward": self._teacher.pop()["teacher_forward"] if self._teacher is not None else 0.0,
            "backbone_neck": stages["backbone"] + stages.get("neck", 0.0),
            "head_forward": stages["head_forward"] + stages.get("aux_2d_forward", 0.0),
            "loss": methods["loss"],
            "distill_losses": methods.get("distill_losses", 0.0),
        }
        parts["forward_other"] = forward - sum(parts.values())
        parts["assign"] = methods["assign"]
        return parts
