"""Measuring a detector: per-stage wall time, statistics, parameters, FLOPs, peak memory, inputs.

Shared by ``tools/benchmark.py`` (inference) and ``tools/benchmark_distill.py`` (one
distillation training step). Nothing here runs at import; every measurement is an explicit
call. Conventions:

* Stages are named submodules: ``backbone`` = ``img_backbone``, ``neck`` = ``img_neck``;
  ``head`` is everything else of the call (3D head, positional encodings, decoding), i.e.
  the total minus the named stages.
* Times are wall-clock seconds of :func:`time.perf_counter`; on CUDA the device is
  synchronised at every stage boundary.
* FLOPs are those of :class:`torch.utils.flop_counter.FlopCounterMode`: matmul, conv,
  attention and their kin, counted as 2 x multiply-accumulates. Element-wise ops, norms and
  ``grid_sample`` (the deformable aggregation) are not counted.
* Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over the measured window (weights
  and inputs included); on CPU the growth of the process's peak resident set size over the
  window (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``, after returning free heap
  pages with glibc's ``malloc_trim``), i.e. what the window needs beyond what was already
  resident (weights, inputs). :attr:`PeakMemoryMeter.method` says which one was used.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from projects.mmdet3d_plugin.models.detectors.base import StreamingDetector

#: Stage name -> submodule attribute of a RepDetr3D / Petr3D detector.
DETECTOR_STAGES: dict[str, str] = {"backbone": "img_backbone", "neck": "img_neck"}
#: Stage that takes the rest of the call.
REST_STAGE = "head"
#: Submodules that do not run in ``predict`` (the 2D auxiliary head with ``aux_2d_only=True``).
TRAIN_ONLY_MODULES: dict[str, str] = {"aux_2d_head": "img_roi_head"}
_MIB = 1024.0 * 1024.0
_PAD_DIVISOR = 32
_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, with a clear error when CUDA is asked for but absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {name!r}")
    return device


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that waits for the queued work of ``device`` (a no-op on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def move_to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with every tensor (also inside lists) moved to ``device``."""
    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device)
        if isinstance(value, list):
            return [move(item) for item in value]
        return value
    return {key: move(value) for key, value in batch.items()}


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """``mean_ms``, ``p50_ms``, ``p90_ms`` (linear interpolation) of durations in seconds."""
    if len(seconds) == 0:
        raise ValueError("latency_stats needs at least one duration")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return dict(mean_ms=float(ms.mean()), p50_ms=float(np.percentile(ms, 50)),
                p90_ms=float(np.percentile(ms, 90)))


def stage_modules(model: nn.Module, stages: Mapping[str, str] = DETECTOR_STAGES) -> dict[str, nn.Module]:
    """Stage name -> submodule; ``KeyError`` naming a missing attribute."""
    found = {}
    for stage, attr in stages.items():
        module = getattr(model, attr, None)
        if not isinstance(module, nn.Module):
            raise KeyError(f"{type(model).__name__} has no submodule '{attr}' (stage '{stage}'); "
                           f"its children are {[name for name, _ in model.named_children()]}")
        found[stage] = module
    return found


class StageTimer:
    """Wall time spent inside named submodules, accumulated per step.

    Use as a context manager (hooks are removed on exit)::

        with StageTimer(model, sync) as timer:
            model(batch, mode="predict")
            seconds = timer.pop()    # {'backbone': ..., 'neck': ...}

    Args:
        model: a detector with the submodules of ``stages``.
        sync: device synchroniser (:func:`synchronizer`), called at each stage boundary.
        stages: stage name -> submodule attribute.
    """

    def __init__(self, model: nn.Module, sync: Callable[[], None],
                 stages: Mapping[str, str] = DETECTOR_STAGES) -> None:
        self.modules = stage_modules(model, stages)
        self.sync = sync
        self._starts: dict[str, float] = {}
        self._totals: dict[str, float] = {stage: 0.0 for stage in self.modules}
        self._handles: list[Any] = []

    def __enter__(self) -> "StageTimer":
        for stage, module in self.modules.items():
            self._handles.append(module.register_forward_pre_hook(self._pre_hook(stage)))
            self._handles.append(module.register_forward_hook(self._post_hook(stage)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _pre_hook(self, stage: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple) -> None:
            self.sync()
            self._starts[stage] = time.perf_counter()
        return hook

    def _post_hook(self, stage: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            self.sync()
            self._totals[stage] += time.perf_counter() - self._starts.pop(stage)
        return hook

    def pop(self) -> dict[str, float]:
        """Seconds per stage since the last :meth:`pop`, and reset."""
        totals = dict(self._totals)
        self._totals = {stage: 0.0 for stage in self.modules}
        return totals


def count_parameters(model: nn.Module, stages: Mapping[str, str] = DETECTOR_STAGES,
                     train_only: Mapping[str, str] = TRAIN_ONLY_MODULES) -> dict[str, int]:
    """Parameter counts: each stage, the rest of the inference path (``head``), each
    training-only submodule (0 when absent; none when the detector runs its 2D head in ``predict``),
    ``inference`` (what ``predict`` uses) and ``total`` (everything)."""
    counts = {stage: sum(p.numel() for p in module.parameters())
              for stage, module in stage_modules(model, stages).items()}
    if isinstance(model, StreamingDetector) and model.runs_2d_head_in_predict:
        train_only = {}
    extra = {name: sum(p.numel() for p in module.parameters()) if isinstance(module, nn.Module) else 0
             for name, module in ((name, getattr(model, attr, None)) for name, attr in train_only.items())}
    total = sum(p.numel() for p in model.parameters())
    inference = total - sum(extra.values())
    counts[REST_STAGE] = inference - sum(counts.values())
    counts.update(extra)
    counts["inference"] = inference
    counts["total"] = total
    return counts


def count_gflops(model: nn.Module, run: Callable[[], Any],
                 stages: Mapping[str, str] = DETECTOR_STAGES) -> dict[str, float]:
    """GFLOPs of one ``run()`` of ``model``: ``total``, per stage, and the rest (``head``).

    Args:
        model: the module whose stages are attributed (``run`` calls it).
        run: the call to count, e.g. ``lambda: model(batch, mode='predict')``.
        stages: stage name -> submodule attribute.
    """
    stage_modules(model, stages)
    with FlopCounterMode(display=False) as counter:
        run()
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    total = counter.get_total_flops()
    result = {stage: sum(per_module.get(f"{root}.{attr}", {}).values()) / 1e9 for stage, attr in stages.items()}
    result[REST_STAGE] = total / 1e9 - sum(result.values())
    result["total"] = total / 1e9
    return result


def _read_status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``VmRSS``)."""
    for line in _PROC_STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(f"{_PROC_STATUS} has no field {field}")


def _malloc_trim() -> None:
    """Give free heap pages back to the OS (glibc only; elsewhere nothing happens)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def cpu_peak_rss_supported() -> bool:
    """Whether the peak RSS can be reset here (Linux ``/proc/self/clear_refs``)."""
    return _PROC_STATUS.is_file() and _PROC_CLEAR_REFS.is_file() and os.access(_PROC_CLEAR_REFS, os.W_OK)


def memory_method(device: torch.device) -> str:
    """What :class:`PeakMemoryMeter` measures on ``device``, in words."""
    if device.type == "cuda":
        return "cuda max_memory_allocated (absolute, weights included)"
    return "cpu peak RSS growth (VmHWM after - VmRSS before, malloc_trim first)"


class PeakMemoryMeter:
    """Peak memory of the code inside ``with`` (see the module docstring for what it means).

    After the block, :attr:`peak_mib` holds the peak and :attr:`method` describes it.
    """

    def __init__(self, device: torch.device) -> None:
        if device.type == "cpu" and not cpu_peak_rss_supported():
            raise RuntimeError("CPU peak memory needs Linux /proc/self/clear_refs (writable) to reset "
                               "the peak RSS; it is not available on this system")
        self.device = device
        self.peak_mib = math.nan
        self.method = memory_method(device)
        self._before_kib = 0

    def __enter__(self) -> "PeakMemoryMeter":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _malloc_trim()
            self._before_kib = _read_status_kib("VmRSS")
            _PROC_CLEAR_REFS.write_text("5")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / _MIB
        else:
            self.peak_mib = max(_read_status_kib("VmHWM") - self._before_kib, 0) / 1024.0


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers depend on: torch, threads, CPU count, load average, device name."""
    info: dict[str, Any] = dict(torch=torch.__version__, device=str(device), torch_threads=torch.get_num_threads(),
                                cpu_count=os.cpu_count(), machine=platform.processor() or platform.machine())
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def config_image_size(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """``(H, W)``: the config's ``ida_aug_conf['final_dim']`` padded to a multiple of 32."""
    conf = cfg.get("ida_aug_conf")
    if not conf or "final_dim" not in conf:
        raise KeyError("the config has no ida_aug_conf['final_dim'] (the network input size)")
    height, width = conf["final_dim"]
    return tuple(int(math.ceil(v / _PAD_DIVISOR) * _PAD_DIVISOR) for v in (height, width))


def dataset_available(data_cfg: Mapping[str, Any]) -> Optional[str]:
    """None when ``data_cfg``'s ``ann_file`` exists, else the reason it cannot be used."""
    ann_file = data_cfg.get("ann_file")
    if ann_file is None:
        return "the dataset config has no ann_file"
    if not Path(ann_file).is_file():
        return f"info file {ann_file} not found"
    return None


def streaming_indices(num_samples: int, batch_size: int, num_batches: int) -> Iterator[list[int]]:
    """Dataset indices of ``num_batches`` streaming batches.

    The ordered dataset (scene by scene, in time) is cut into ``batch_size`` contiguous
    parts; slot ``b`` walks part ``b`` in order (wrapping around), so each slot's temporal
    memory sees consecutive frames.
    """
    if batch_size < 1 or num_samples < batch_size:
        raise ValueError(f"cannot stream batches of {batch_size} from a dataset of {num_samples} samples")
    part = num_samples // batch_size
    for step in range(num_batches):
        yield [slot * part + step % part for slot in range(batch_size)]


def write_result(result: Mapping[str, Any], out: Optional[str]) -> None:
    """Write a benchmark result as JSON to ``out`` (parent folders created); nothing when ``None``."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))

