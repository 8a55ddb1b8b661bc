"""Running and timing an exported streaming detector with onnxruntime.

:class:`OrtStreamingSession` keeps the memory between frames (the graph's ``new_memory_*``
outputs become the next frame's ``memory_*`` inputs), so a caller only passes the frame
inputs. :func:`time_onnx_model` measures the latency of one frame, e.g. for the
onnxruntime column of ``tools/benchmark.py``.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from .streaming_wrapper import MEMORY_INPUTS, MEMORY_OUTPUTS, OUTPUT_NAMES


def _session(path: str | Path, num_threads: Optional[int]) -> Any:
    """An onnxruntime CPU session (clear error when onnxruntime is missing)."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError("onnxruntime is needed to run exported models: "
                          "pip install -e '.[export]'") from err
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OrtStreamingSession:
    """An exported model and its memory, one frame per :meth:`step`.

    Args:
        path: the ``.onnx`` file of :func:`export_streaming_onnx`.
        num_threads: onnxruntime intra-op threads (None: its default).
    """

    def __init__(self, path: str | Path, num_threads: Optional[int] = None) -> None:
        self.session = _session(path, num_threads)
        self.inputs = {value.name: value for value in self.session.get_inputs()}
        missing = [name for name in MEMORY_INPUTS if name not in self.inputs]
        if missing:
            raise ValueError(f"{path} is not a streaming export: it lacks the inputs {missing}")
        self.memory: dict[str, np.ndarray] = {}

    def reset(self, batch_size: int) -> None:
        """Start every batch slot from the empty (all-zero) memory."""
        self.memory = {}
        for name in MEMORY_INPUTS:
            value = self.inputs[name]
            dtype = np.float64 if value.type == "tensor(double)" else np.float32
            self.memory[name] = np.zeros((batch_size, *value.shape[1:]), dtype=dtype)

    def step(self, frame: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one frame; returns every output by name and keeps the new memory.

        Args:
            frame: the frame inputs (``img``, ``lidar2img``, ..., ``prev_exists``) as numpy
                arrays with the exported dtypes; extra keys the graph does not take are
                ignored.
        """
        if not self.memory:
            self.reset(int(frame["img"].shape[0]))
        feed = {name: value for name, value in frame.items() if name in self.inputs}
        missing = [name for name in self.inputs if name not in feed and name not in self.memory]
        if missing:
            raise KeyError(f"frame lacks the inputs {missing}")
        feed.update(self.memory)
        outputs = dict(zip(OUTPUT_NAMES, self.session.run(list(OUTPUT_NAMES), feed)))
        self.memory = {new: outputs[old] for new, old in zip(MEMORY_INPUTS, MEMORY_OUTPUTS)}
        return outputs


def time_onnx_model(path: str | Path, frame: Mapping[str, np.ndarray], warmup: int = 3,
                    iters: int = 20, num_threads: Optional[int] = None) -> dict[str, float]:
    """Latency of one streaming frame in onnxruntime (CPU execution provider).

    Args:
        path: the exported ``.onnx`` file.
        frame: frame inputs as numpy arrays (e.g. ``example_frames.synthetic_frame`` turned
            into numpy); the memory carries over between the timed frames.
        warmup, iters: untimed and timed runs.
        num_threads: onnxruntime intra-op threads (None: its default).

    Returns:
        ``latency_ms_mean``, ``latency_ms_median``, ``latency_ms_min``, ``fps`` (from the
        median) and ``iters``.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f"need iters >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    runner = OrtStreamingSession(path, num_threads)
    runner.reset(int(frame["img"].shape[0]))
    for _ in range(warmup):
        runner.step(frame)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        runner.step(frame)
        times.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(times)
    return dict(latency_ms_mean=statistics.fmean(times), latency_ms_median=median,
                latency_ms_min=min(times), fps=1e3 / median, iters=float(iters))
