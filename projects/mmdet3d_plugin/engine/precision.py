"""Numeric precision of training and evaluation: parsed from the config, applied by the trainer.

Config spellings (one of them, or none for float32 everywhere):

* ``fp16 = dict(loss_scale='dynamic')`` or ``optimizer_config.type='Fp16OptimizerHook'``
  (the upstream StreamPETR / RayDN configs): what upstream does with them. mmcv's fp16
  hook on torch >= 1.6 autocasts only the functions decorated with ``@auto_fp16`` — the
  detectors' ``extract_feat`` (backbone and neck), outputs cast back to float32 — and scales
  the loss dynamically; the 3D head and the losses run in float32, and testing goes through
  the undecorated ``extract_img_feat``, so it runs in float32. Here: ``train='16-mixed'``,
  ``scope='image_features'``, ``test='fp32'``.
* ``precision = 'bf16-mixed'`` (or ``'16-mixed'``, ``'fp32'``): the whole training step under
  autocast (Lightning's mixed precision), evaluation in float32.
* ``precision = dict(train=..., scope='model' | 'image_features', test=...)``: every field.

The command lines override: ``--precision`` of ``tools/train.py`` / ``tools/distillation.py``
sets the training precision over the whole model, that of ``tools/test.py`` the evaluation.
Without a GPU, ``16-mixed`` falls back to float32 with a notice (CPU autocast is bf16).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

from ..models.detectors.base import StreamingDetector

PRECISIONS = ("fp32", "bf16-mixed", "16-mixed")
SCOPES = ("model", "image_features")
_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass(frozen=True)
class PrecisionSpec:
    """Precision of training (``train`` over ``scope``) and of evaluation (``test``)."""

    train: str = "fp32"
    scope: str = "model"
    test: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            value = getattr(self, name)
            if value not in PRECISIONS:
                raise ValueError(f"precision.{name} must be one of {PRECISIONS}, got {value!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"precision.scope must be one of {SCOPES}, got {self.scope!r}")
        mixed = {self.train, self.test} - {"fp32"}
        if len(mixed) > 1:
            raise ValueError(f"precision: training ({self.train}) and evaluation ({self.test}) cannot "
                             "use two different mixed precisions in one run")

    def override(self, train: Optional[str] = None, test: Optional[str] = None) -> PrecisionSpec:
        """This spec with the command line's choices: ``train`` (whole model) and/or ``test``."""
        spec = self
        if train is not None:
            spec = dataclasses.replace(spec, train=train, scope="model")
        if test is not None:
            spec = dataclasses.replace(spec, test=test)
        return spec

    def on_device(self, accelerator: str) -> PrecisionSpec:
        """This spec where it can run: without a GPU, ``16-mixed`` becomes float32 (a notice)."""
        if accelerator == "gpu" or "16-mixed" not in (self.train, self.test):
            return self
        print("16-mixed precision needs a GPU: running in fp32 on the CPU (bf16-mixed runs on CPUs).")
        return PrecisionSpec(train="fp32" if self.train == "16-mixed" else self.train, scope=self.scope,
                             test="fp32" if self.test == "16-mixed" else self.test)


def parse_precision(cfg: Mapping[str, Any]) -> PrecisionSpec:
    """The :class:`PrecisionSpec` of a config (see the module doc for the spellings)."""
    fp16_hook = bool(cfg.get("fp16")) or dict(cfg.get("optimizer_config") or {}).get("type") == "Fp16OptimizerHook"
    given = cfg.get("precision")
    if given is not None and fp16_hook:
        raise ValueError("the config sets both 'precision' and the fp16 hook ('fp16' / Fp16OptimizerHook); "
                         "keep one (set fp16=None to use 'precision')")
    if fp16_hook:
        return PrecisionSpec(train="16-mixed", scope="image_features", test="fp32")
    if given is None:
        return PrecisionSpec()
    if isinstance(given, str):
        return PrecisionSpec(train=given)
    if isinstance(given, Mapping):
        unknown = sorted(set(given) - {"train", "scope", "test"})
        if unknown:
            raise KeyError(f"Unknown key(s) {unknown} in 'precision'; allowed: train, scope, test")
        return PrecisionSpec(**dict(given))
    raise TypeError(f"'precision' must be one of {PRECISIONS} or a dict(train=, scope=, test=), got {given!r}")


class StepPrecision(MixedPrecision):
    """Lightning mixed precision whose autocast region follows a :class:`PrecisionSpec`:
    training steps autocast when ``scope='model'`` (with ``'image_features'`` the detectors
    autocast their own features), evaluation steps only when ``test`` is mixed. The loss
    scaler of ``16-mixed`` works as in Lightning's plugin."""

    def __init__(self, spec: PrecisionSpec, device: str) -> None:
        mixed = ({spec.train, spec.test} - {"fp32"}).pop()
        super().__init__(precision=mixed, device=device)
        self.spec = spec

    @contextlib.contextmanager
    def train_step_context(self) -> Iterator[None]:
        with self._autocast_if(self.spec.train != "fp32" and self.spec.scope == "model"):
            yield

    @contextlib.contextmanager
    def val_step_context(self) -> Iterator[None]:
        with self._autocast_if(self.spec.test != "fp32"):
            yield

    test_step_context = val_step_context
    predict_step_context = val_step_context

    def _autocast_if(self, enabled: bool) -> contextlib.AbstractContextManager:
        return self.forward_context() if enabled else contextlib.nullcontext()


def precision_plugins(spec: PrecisionSpec, device: str) -> list[StepPrecision]:
    """The trainer's precision plugin (none for float32 everywhere)."""
    if spec.train == "fp32" and spec.test == "fp32":
        return []
    return [StepPrecision(spec, device)]


def apply_feature_precision(model: nn.Module, spec: PrecisionSpec) -> int:
    """With ``scope='image_features'``, make every detector in ``model`` (a distiller's
    student and teacher too) autocast its image features in training; returns how many."""
    dtype = _DTYPES.get(spec.train) if spec.scope == "image_features" else None
    detectors = [module for module in model.modules() if isinstance(module, StreamingDetector)]
    for detector in detectors:
        detector.set_feature_precision(dtype)
    return len(detectors)
