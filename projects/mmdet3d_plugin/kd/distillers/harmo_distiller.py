"""HarmoDistiller: a frozen teacher detector, a student detector, taps, adapters and losses.

One training step (``forward(batch, mode='loss')``)::

    taps open
    teacher (eval, no_grad, its own memory queue) predicts on the batch    -> teacher taps record
    student (train) computes its detection losses                          -> student taps record
    adapters project the student's tapped tensors
    each distillation loss gets its declared inputs (+ progress)           -> loss_<name>
    taps close (everything recorded is dropped)

``forward(batch, mode='predict')`` is the student's prediction, so evaluating a distiller
evaluates its student. The state dict holds ``student.*``, ``teacher.*``, ``adapters.*`` and
``distill_losses.*`` (losses with parameters); recorded tensors never enter it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ...models.detectors.base import StreamingModel, build_detector
from ...registry import MODELS
from ..recorders.tap_manager import TapManager
from .detector_configs import ConfigSource, check_compatible, load_detector_config
from .inheritance import check_inherit, inherit_from_teacher
from .loss_specs import (BATCH_PREFIX, LossSpec, build_loss_spec, check_all_used, select_enabled,
                         split_loss_config)
from .teacher_checkpoint import load_teacher_weights, require_teacher_checkpoint
from ..losses.pseudo_labels import build_pseudo_labeler
from .teacher_inputs import check_input_size, teacher_batch

_MODES = ("loss", "predict")


@MODELS.register_module()
class HarmoDistiller(StreamingModel):
    """Distil a frozen temporal query teacher into a student detector.

    Args:
        teacher_cfg: the teacher's config file (its ``model`` section is built) or model dict.
        teacher_ckpt: the teacher's trained weights, loaded strictly. A missing file raises
            ``FileNotFoundError`` before anything is built (unless ``load_teacher=False``).
        student_cfg: the student's config file or model dict.
        taps: tap name → ``dict(model='student'|'teacher', path=..., io='output'|'input',
            call=0, index=None)``; ``path`` names a module or ends in a method of one (see
            :class:`~projects.mmdet3d_plugin.kd.recorders.FeatureTap` and
            :class:`~projects.mmdet3d_plugin.kd.recorders.MethodTap`).
        adapters: adapter name → config of a trainable projection (``ConvAdapter``,
            ``LinearAdapter``), used through a loss's ``adapter`` mapping.
        distill_losses: loss name → loss config with ``inputs=dict(<forward arg>=<tap name or
            'batch.<key>'>)`` and optionally ``adapter=dict(<forward arg>=<adapter name>)``
            (see :mod:`.loss_specs`). Each gives ``loss_<name>`` in the loss dict.
        teacher_input_size: ``None`` (the teacher sees the student's images) or ``(H, W)``:
            the teacher's images are resized and its camera matrices follow.
        pseudo_label_cfg: ``None`` or ``dict(score_thr=..., max_num=...)``: the teacher's
            confident, finite, positive-size predictions (:class:`PseudoLabeler`) are added to
            the student's batch as ``pseudo_bboxes_3d`` and ``pseudo_labels_3d`` (lists of B
            tensors).
        student_cfg_options: ``--cfg-options``-style overrides of the student config file,
            e.g. to derive an R18 student from an R50 config.
        enabled_losses: ``None`` (all) or the names of the ``distill_losses`` to use; the
            taps and adapters only the others use are dropped (ablations from the command line).
        inherit: module paths of parts that student and teacher share (e.g.
            ``['pts_bbox_head']``): the student starts them from the teacher's trained weights
            and trains them as its own (see :mod:`.inheritance`). ``None`` or ``[]``: none.
        load_teacher: ``True`` (training): the teacher's weights come from ``teacher_ckpt``.
            ``False``: ``teacher_ckpt`` is neither required nor read; the teacher's weights
            must come from a full distiller state dict (``teacher.*`` keys) loaded next, as
            :func:`~.from_checkpoint.build_distiller_from_checkpoint` does for tools that load
            a distiller checkpoint (visualisation). Until such a load the distiller refuses
            ``mode='loss'`` (its teacher is untrained).
    """

    def __init__(
        self,
        teacher_cfg: ConfigSource,
        teacher_ckpt: str,
        student_cfg: ConfigSource,
        taps: Optional[Mapping[str, Mapping[str, Any]]] = None,
        adapters: Optional[Mapping[str, Mapping[str, Any]]] = None,
        distill_losses: Optional[Mapping[str, Mapping[str, Any]]] = None,
        teacher_input_size: Optional[Sequence[int]] = None,
        pseudo_label_cfg: Optional[Mapping[str, Any]] = None,
        student_cfg_options: Optional[Mapping[str, Any]] = None,
        enabled_losses: Optional[Sequence[str]] = None,
        inherit: Optional[Sequence[str]] = None,
        load_teacher: bool = True,
    ) -> None:
        super().__init__()
        teacher_source = str(teacher_cfg) if isinstance(teacher_cfg, (str, Path)) else "<teacher model dict>"
        ckpt_path = require_teacher_checkpoint(teacher_ckpt, teacher_source) if load_teacher else None
        self.teacher_input_size = check_input_size(teacher_input_size)
        self.pseudo_labeler = build_pseudo_labeler(pseudo_label_cfg)
        t_cfg = load_detector_config(teacher_cfg, "teacher")
        s_cfg = load_detector_config(student_cfg, "student", student_cfg_options)
        self.student = build_detector(s_cfg.model, f"the student config ({s_cfg.source})")
        self.teacher = build_detector(t_cfg.model, f"the teacher config ({t_cfg.source})")
        check_compatible(self.teacher, self.student, t_cfg, s_cfg)
        if ckpt_path is not None:
            load_teacher_weights(self.teacher, ckpt_path, t_cfg.source)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher_ckpt = None if ckpt_path is None else str(ckpt_path)
        self._teacher_pending = ckpt_path is None
        self.register_load_state_dict_pre_hook(_note_teacher_loaded)
        self.inherit = check_inherit(inherit)
        inherit_from_teacher(self.student, self.teacher, self.inherit)
        distill_losses, taps, adapters = select_enabled(
            distill_losses or {}, taps or {}, adapters or {}, enabled_losses)
        self.adapters = nn.ModuleDict({name: MODELS.build(dict(cfg)) for name, cfg in adapters.items()})
        self.distill_losses, self._loss_specs = self._build_losses(distill_losses, taps)
        self._taps = TapManager({"student": self.student, "teacher": self.teacher}, taps)
        self._progress = 0.0

    def _build_losses(self, cfgs: Mapping[str, Mapping[str, Any]], taps: Mapping[str, Any]
                      ) -> tuple[nn.ModuleDict, dict[str, LossSpec]]:
        """The loss modules and their checked feeding specs."""
        modules, specs = nn.ModuleDict(), {}
        for name, cfg in cfgs.items():
            module_cfg, inputs, adapter_map = split_loss_config(name, cfg)
            modules[name] = MODELS.build(module_cfg)
            specs[name] = build_loss_spec(name, modules[name], inputs, adapter_map, taps, self.adapters)
        check_all_used(specs, taps, self.adapters)
        return modules, specs

    @property
    def taps(self) -> TapManager:
        """The tap manager (its hooks live as long as the distiller, see :meth:`remove_taps`)."""
        return self._taps

    @property
    def progress(self) -> float:
        """Training progress in ``[0, 1]`` passed to losses that take ``progress``."""
        return self._progress

    def set_training_progress(self, step: int, max_steps: int) -> None:
        """Called by the engine before each step: ``progress = step / max_steps`` (clipped)."""
        if max_steps <= 0:
            raise ValueError(f"set_training_progress: max_steps must be positive, got {max_steps}")
        self._progress = min(max(float(step) / float(max_steps), 0.0), 1.0)

    def train(self, mode: bool = True) -> "HarmoDistiller":
        """Set the student (and adapters, losses) to ``mode``; the teacher stays in eval."""
        super().train(mode)
        self.teacher.eval()
        return self

    def init_weights(self) -> None:
        """Initialise the student's pretrained parts (the teacher comes from its checkpoint);
        inherited parts are copied from the teacher again afterwards."""
        self.student.init_weights()
        inherit_from_teacher(self.student, self.teacher, self.inherit)

    def reset_memory(self) -> None:
        """Forget the temporal memory of both detectors."""
        self.student.reset_memory()
        self.teacher.reset_memory()

    def remove_taps(self) -> None:
        """Take every tap hook off the models (the distiller cannot train afterwards)."""
        self._taps.remove()

    def forward(self, batch: Mapping[str, Any], mode: str = "loss") -> Union[dict[str, Tensor], list]:
        """``'loss'``: the student's losses and ``loss_<name>`` per distillation loss;
        ``'predict'``: the student's predictions (docs/data_contract.md)."""
        if mode not in _MODES:
            raise ValueError(f"HarmoDistiller.forward: mode must be one of {_MODES}, got {mode!r}")
        if mode == "predict":
            return self.student(batch, mode="predict")
        if self._teacher_pending:
            raise RuntimeError("HarmoDistiller was built with load_teacher=False and no distiller state "
                               "dict with 'teacher.*' keys was loaded since: its teacher is untrained. "
                               "Train with load_teacher=True and model.teacher_ckpt=<teacher .pth>.")
        with self._taps.recording():
            predictions = self._run_teacher(batch)
            student_batch = self._student_batch(batch, predictions)
            losses = dict(self.student(student_batch, mode="loss"))
            distill = self._distillation_losses(student_batch)
        clash = sorted(set(losses) & set(distill))
        if clash:
            raise KeyError(f"distillation loss names {clash} clash with the student's own losses; rename them")
        losses.update(distill)
        return losses

    def _run_teacher(self, batch: Mapping[str, Any]) -> list[dict[str, Tensor]]:
        """The teacher's predictions (eval, no grad); it advances its own memory queue."""
        self.teacher.eval()
        with torch.no_grad():
            return self.teacher(teacher_batch(batch, self.teacher_input_size), mode="predict")

    def _student_batch(self, batch: Mapping[str, Any], predictions: list[dict[str, Tensor]]) -> dict[str, Any]:
        """The batch, plus the teacher's pseudo labels when configured."""
        out = dict(batch)
        if self.pseudo_labeler is not None:
            out["pseudo_bboxes_3d"], out["pseudo_labels_3d"] = self.pseudo_labeler(predictions)
        return out

    def _distillation_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``loss_<name>`` of every distillation loss; each tap is popped once and shared."""
        recorded = {name: self._taps.pop(name) for name in self._taps.names}
        adapted: dict[tuple[str, str], Any] = {}
        return {f"loss_{name}": self.distill_losses[name](**self.loss_inputs(name, recorded, batch, adapted))
                for name in self._loss_specs}

    def loss_inputs(self, name: str, recorded: Mapping[str, Any], batch: Mapping[str, Any],
                    adapted: Optional[dict[tuple[str, str], Any]] = None) -> dict[str, Any]:
        """The keyword arguments distillation loss ``name`` is called with.

        Args:
            name: a loss of ``distill_losses``.
            recorded: tap name → recorded value (at least the taps this loss reads).
            batch: the student's batch (``'batch.<key>'`` sources).
            adapted: cache of adapter outputs shared between the losses of one step.
        """
        spec = self._loss_specs[name]
        adapted = {} if adapted is None else adapted
        kwargs = {}
        for arg, source in spec.inputs.items():
            if source.startswith(BATCH_PREFIX):
                kwargs[arg] = _batch_value(batch, source, name)
            elif arg in spec.adapters:
                key = (spec.adapters[arg], source)
                if key not in adapted:
                    adapted[key] = self.adapters[key[0]](recorded[source])
                kwargs[arg] = adapted[key]
            else:
                kwargs[arg] = recorded[source]
        if spec.takes_progress:
            kwargs["progress"] = self._progress
        return kwargs

    def loss_taps(self, name: str) -> list[str]:
        """The taps distillation loss ``name`` reads (in its ``inputs`` order)."""
        return [source for source in self._loss_specs[name].inputs.values()
                if not source.startswith(BATCH_PREFIX)]


def _note_teacher_loaded(module: HarmoDistiller, state_dict: Mapping[str, Any], prefix: str,
                         *args: Any) -> None:
    """``load_state_dict`` pre-hook: a state dict with ``teacher.*`` keys gives the teacher its
    weights (a strict load that then fails raises anyway)."""
    if any(key.startswith(f"{prefix}teacher.") for key in state_dict):
        module._teacher_pending = False


def _batch_value(batch: Mapping[str, Any], source: str, loss_name: str) -> Any:
    """``batch[key]`` for a ``'batch.<key>'`` source (KeyError naming the loss otherwise)."""
    key = source[len(BATCH_PREFIX):]
    if key not in batch:
        raise KeyError(f"distill_losses.{loss_name}: the batch has no '{key}' (from '{source}'); "
                       f"batch keys: {sorted(batch)}")
    return batch[key]
