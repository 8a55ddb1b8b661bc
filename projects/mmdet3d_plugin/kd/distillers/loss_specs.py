"""How a distillation loss is fed: its ``inputs`` (and optional ``adapter``) declarations.

A loss config names, for each argument of the loss's ``forward``, where the value comes from::

    distill_losses = dict(
        bkl_fpn_0=dict(type='BalancedKLLoss', tau=4.0, reverse_weight=7.0, loss_weight=0.1,
                       inputs=dict(student='s_fpn_0', teacher='t_fpn_0')),
        fitnet_0=dict(type='FitNetsLoss', loss_weight=1.0,
                      inputs=dict(student='s_fpn_0', teacher='t_fpn_0'),
                      adapter=dict(student='proj_0')),
        fgd_0=dict(type='FGDLoss', ..., inputs=dict(student='s_fpn_0', teacher='t_fpn_0',
                   gt_bboxes_3d='batch.gt_bboxes_3d', lidar2img='batch.lidar2img',
                   pad_shape='batch.pad_shape')),
    )

A source is a declared tap name or ``'batch.<key>'`` (a key of the student's batch).
``adapter`` maps an argument to a declared adapter applied to that argument's tap value.
``progress`` is reserved: a loss whose ``forward`` takes it receives the training progress.
Everything is checked against ``inspect.signature(loss.forward)`` when the distiller is
built, so a typo fails at build time, not at the first step.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

BATCH_PREFIX = "batch."
PROGRESS_ARG = "progress"
SPEC_KEYS = ("inputs", "adapter")


@dataclass(frozen=True)
class LossSpec:
    """The feeding of one distillation loss.

    Attributes:
        name: the loss name; its value is returned as ``loss_<name>``.
        inputs: forward argument → source (tap name or ``'batch.<key>'``).
        adapters: forward argument → adapter name (applied to that argument's tap value).
        takes_progress: whether ``forward`` has a ``progress`` argument.
    """

    name: str
    inputs: dict[str, str]
    adapters: dict[str, str]
    takes_progress: bool


def split_loss_config(name: str, cfg: Mapping[str, Any]) -> tuple[dict, dict[str, str], dict[str, str]]:
    """``(module config, inputs, adapter mapping)`` of one loss config."""
    if "type" not in cfg:
        raise KeyError(f"distill_losses.{name} needs a 'type' (e.g. 'BalancedKLLoss')")
    if not cfg.get("inputs"):
        raise KeyError(f"distill_losses.{name} needs inputs=dict(<forward arg>=<tap name>), "
                       "e.g. inputs=dict(student='s_fpn_0', teacher='t_fpn_0')")
    module_cfg = {key: value for key, value in cfg.items() if key not in SPEC_KEYS}
    return module_cfg, dict(cfg["inputs"]), dict(cfg.get("adapter") or {})


def _close(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" (close matches: {close})" if close else ""


def _check_source(where: str, source: str, taps: Collection[str]) -> None:
    if not isinstance(source, str):
        raise TypeError(f"{where}: a source is a tap name or 'batch.<key>', got {source!r}")
    if source.startswith(BATCH_PREFIX) and len(source) > len(BATCH_PREFIX):
        return
    if source not in taps:
        raise KeyError(f"{where}: '{source}' is not a declared tap{_close(source, taps)}; "
                       f"declared taps: {sorted(taps)}; batch keys are named 'batch.<key>'")


def build_loss_spec(name: str, loss: nn.Module, inputs: Mapping[str, str], adapters: Mapping[str, str],
                    taps: Collection[str], adapter_names: Collection[str]) -> LossSpec:
    """Check one loss's declarations against its ``forward`` signature and return its spec.

    Raises:
        KeyError / TypeError: an input that is not a forward argument, a source that is not a
            declared tap, an adapter on an undeclared input or of an unknown name, a required
            forward argument left out, or ``progress`` given as an input.
    """
    params = inspect.signature(loss.forward).parameters
    named = {key for key, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    forward = f"{type(loss).__name__}.forward({', '.join(params)})"
    if PROGRESS_ARG in inputs:
        raise KeyError(f"distill_losses.{name}.inputs: '{PROGRESS_ARG}' is reserved; the distiller "
                       "passes the training progress itself")
    for arg, source in inputs.items():
        if arg not in named and not open_kwargs:
            raise KeyError(f"distill_losses.{name}.inputs: '{arg}' is not an argument of "
                           f"{forward}{_close(arg, named)}")
        _check_source(f"distill_losses.{name}.inputs.{arg}", source, taps)
    for arg, adapter in adapters.items():
        if arg not in inputs:
            raise KeyError(f"distill_losses.{name}.adapter: '{arg}' is not one of its inputs {sorted(inputs)}")
        if inputs[arg].startswith(BATCH_PREFIX):
            raise KeyError(f"distill_losses.{name}.adapter.{arg}: adapters apply to taps, not to "
                           f"'{inputs[arg]}'")
        if adapter not in adapter_names:
            raise KeyError(f"distill_losses.{name}.adapter.{arg}: no adapter named '{adapter}'"
                           f"{_close(adapter, adapter_names)}; declared adapters: {sorted(adapter_names)}")
    required = [key for key, p in params.items() if key in named and p.default is p.empty]
    missing = [key for key in required if key not in inputs and key != PROGRESS_ARG]
    if missing:
        raise KeyError(f"distill_losses.{name}: {forward} requires {missing}, which inputs does not "
                       f"provide (inputs: {sorted(inputs)})")
    return LossSpec(name, dict(inputs), dict(adapters), PROGRESS_ARG in named)


def check_all_used(specs: Mapping[str, LossSpec], taps: Collection[str], adapter_names: Collection[str]) -> None:
    """Every declared tap and adapter must feed some loss (an unused tap records for nothing;
    an unused adapter holds trainable weights that never get a gradient, which DDP rejects)."""
    used_taps = {source for spec in specs.values() for source in spec.inputs.values()}
    used_adapters = {adapter for spec in specs.values() for adapter in spec.adapters.values()}
    unused = ([f"tap '{t}'" for t in taps if t not in used_taps]
              + [f"adapter '{a}'" for a in adapter_names if a not in used_adapters])
    if unused:
        raise ValueError(f"declared but used by no distillation loss: {', '.join(unused)}; remove them "
                         "or name them in a loss's inputs / adapter")


def select_enabled(
    losses: Mapping[str, Mapping[str, Any]],
    taps: Mapping[str, Any],
    adapters: Mapping[str, Any],
    enabled: Collection[str] | None,
) -> tuple[dict, dict, dict]:
    """Keep the losses named in ``enabled`` and the taps and adapters they use.

    ``enabled=None`` keeps everything. This turns terms on and off for ablations from the
    command line (``--cfg-options "model.enabled_losses=[bkl_fpn_0,output]"``) without
    editing the config's tap and loss declarations.
    """
    if enabled is None:
        return dict(losses), dict(taps), dict(adapters)
    unknown = [name for name in enabled if name not in losses]
    if unknown:
        hints = {name: difflib.get_close_matches(name, list(losses), n=3) for name in unknown}
        raise KeyError(f"enabled_losses names losses that are not declared: {hints}; "
                       f"declared: {sorted(losses)}")
    kept = {name: cfg for name, cfg in losses.items() if name in enabled}
    used_taps, used_adapters = set(), set()
    for name, cfg in kept.items():
        _, inputs, adapter_map = split_loss_config(name, cfg)
        used_taps.update(source for source in inputs.values() if not source.startswith(BATCH_PREFIX))
        used_adapters.update(adapter_map.values())
    return (kept, {k: v for k, v in taps.items() if k in used_taps},
            {k: v for k, v in adapters.items() if k in used_adapters})
