"""Inference precision, ``torch.compile`` and CUDA graphs of a streaming detector.

Shared by ``tools/benchmark.py`` and ``tools/benchmark_compare.py``:

* ``--precision``: ``fp32``; ``tf32`` (TF32 matmuls and convolutions through
  ``torch.backends``, CUDA only); ``bf16`` / ``fp16`` (autocast around every predict call;
  ``fp16`` CUDA only). The memory queue's updates always run in float32 / float64
  (``MemoryQueue`` disables autocast itself).
* ``--compile``: ``torch.compile`` of the backbone, the neck and the 3D head's forward (one
  frame: memory update, queries, decoder, box branches), each wrapped in place so that the
  stage hooks of :class:`~harmodistill_tools.benchmarking.StageTimer` stay outside the
  compiled code. The memory queue is a plain object whose tensors are replaced every frame:
  dynamo reads them as graph inputs (guarded on shape, dtype and ``None``), never as
  constants, and replays the attribute writes after the graph, so streaming state is not
  baked in (``tests/tools/test_benchmark_acceleration.py`` checks compiled against eager
  predictions over streaming frames). The first frame (empty queue) and the next ones
  compile two graphs.
* ``--cuda-graphs`` (CUDA only): the backbone and the neck, each captured into a CUDA graph
  at the first call's input shape (:class:`CudaGraphModule`: static input buffers, outputs
  valid until the next call).
* ``--cuda-graph-head`` (CUDA only, with ``--cuda-graphs``): the head's frame too, with the
  memory queue as explicit static state (:class:`CudaGraphHead`): the frame is run as a
  function ``(memory state, inputs) -> (outputs, new memory state)``
  (:class:`MemoryStateFrame`) captured once; each frame copies the queue's tensors into the
  graph's static inputs, replays, and loads the new state (copies) back into the queue. The
  first frame of a stream (empty queue, allocation) runs eagerly. RayDN's head only:
  StreamPETR's ``torch.linalg.inv`` synchronises with the host, which capture refuses
  (docs/benchmarks.md). ``--compile --compile-mode
  reduce-overhead`` graphs the head another way: inductor's CUDA graph trees, which copy the
  queue's tensors into their static inputs each frame.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn
from torch.utils import _pytree as pytree

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
#: Precisions that run on CPU.
CPU_PRECISIONS = ("fp32", "bf16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
#: Detector parts compiled or graphed, by attribute.
FEATURE_PARTS = ("img_backbone", "img_neck")
HEAD_PART = "pts_bbox_head"
_GRAPH_WARMUP_CALLS = 3


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision fp32|tf32|bf16|fp16`` (default fp32)."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32; tf32 (CUDA matmul/cuDNN TF32 flags); bf16 / fp16 (autocast); "
                             "CPU: fp32 and bf16 only")


def add_acceleration_options(parser: argparse.ArgumentParser) -> None:
    """``--precision``, ``--compile``, ``--compile-mode``, ``--compile-backend``, ``--cuda-graphs``,
    ``--cuda-graph-head``."""
    add_precision_option(parser)
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the backbone, the neck and the head's per-frame forward")
    parser.add_argument("--compile-mode", choices=COMPILE_MODES, default="default",
                        help="torch.compile mode (inductor backend only)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend (e.g. aot_eager to check tracing without inductor)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="capture the backbone and the neck in CUDA graphs (CUDA only)")
    parser.add_argument("--cuda-graph-head", action="store_true",
                        help="with --cuda-graphs: capture the head's frames too, the memory queue as static state")


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``ValueError`` for an unknown precision or one ``device`` does not run."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type == "cpu" and precision not in CPU_PRECISIONS:
        raise ValueError(f"--precision {precision} needs CUDA; on CPU use one of {CPU_PRECISIONS}")


def check_acceleration(precision: str, compile_mode: Optional[str], cuda_graphs: bool,
                       device: torch.device, cuda_graph_head: bool = False) -> None:
    """Raise ``ValueError`` for settings ``device`` cannot run (see :func:`accelerate`)."""
    check_precision(precision, device)
    if compile_mode is not None and compile_mode not in COMPILE_MODES:
        raise ValueError(f"--compile-mode must be one of {COMPILE_MODES}, got {compile_mode!r}")
    if cuda_graphs and device.type != "cuda":
        raise ValueError(f"--cuda-graphs needs a CUDA device, got --device {device}")
    if cuda_graph_head and not cuda_graphs:
        raise ValueError("--cuda-graph-head goes with --cuda-graphs (the features are graphed first)")
    if cuda_graphs and compile_mode == "reduce-overhead":
        raise ValueError("--cuda-graphs and --compile-mode reduce-overhead both capture CUDA graphs; pick one")


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device, cache_enabled: bool = True) -> Iterator[None]:
    """The numeric setting of ``precision`` on ``device`` for the code inside ``with``.

    ``tf32`` sets ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``
    and restores both on exit; ``bf16`` / ``fp16`` enter autocast (``cache_enabled=False``
    when CUDA graphs are captured inside, as ``torch.cuda.graph`` requires).
    """
    check_precision(precision, device)
    if precision == "tf32":
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    elif precision in AUTOCAST_DTYPES:
        with torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision], cache_enabled=cache_enabled):
            yield
    else:
        yield


class CudaGraphModule(nn.Module):
    """``module`` replayed from a CUDA graph captured at its first call.

    The first call warms ``module`` up on a side stream, then captures it with the call's
    tensors copied into static input buffers. Later calls copy their tensors into those
    buffers (skipped when a tensor already is the buffer, e.g. the previous graph's output)
    and replay. Returned tensors are the graph's static outputs: valid until the next call.
    Calls must pass tensors of the captured shapes and dtypes (``ValueError`` otherwise);
    non-tensor arguments (positional or keyword) are fixed at capture.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self._graph: Optional[torch.cuda.CUDAGraph] = None
        self._static_inputs: list[torch.Tensor] = []
        self._static_output: Any = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Replay the graph on ``args`` and ``kwargs`` (capturing it first)."""
        leaves, _ = pytree.tree_flatten((args, kwargs))
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        if self._graph is None:
            self._capture(args, kwargs, tensors)
            return self._static_output
        signature = [(tuple(t.shape), t.dtype) for t in self._static_inputs]
        if [(tuple(t.shape), t.dtype) for t in tensors] != signature:
            raise ValueError(f"CudaGraphModule({type(self.module).__name__}) was captured for inputs "
                             f"{signature}; got {[(tuple(t.shape), t.dtype) for t in tensors]}")
        for static, tensor in zip(self._static_inputs, tensors):
            if static.data_ptr() != tensor.data_ptr():
                static.copy_(tensor)
        self._graph.replay()
        return self._static_output

    def _capture(self, args: tuple, kwargs: dict[str, Any], tensors: list[torch.Tensor]) -> None:
        """Warm up and capture ``module`` on static copies of ``tensors``, then replay once
        (capturing records the kernels without running them)."""
        if not tensors or any(not t.is_cuda for t in tensors):
            raise ValueError(f"CudaGraphModule({type(self.module).__name__}) needs CUDA tensor inputs")
        static = iter([t.clone() for t in tensors])
        static_args, static_kwargs = pytree.tree_map(
            lambda leaf: next(static) if isinstance(leaf, torch.Tensor) else leaf, (args, kwargs))
        self._static_inputs = [leaf for leaf in pytree.tree_leaves((static_args, static_kwargs))
                               if isinstance(leaf, torch.Tensor)]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(_GRAPH_WARMUP_CALLS):
                self.module(*static_args, **static_kwargs)
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._static_output = self.module(*static_args, **static_kwargs)
        self._graph.replay()


class MemoryStateFrame(nn.Module):
    """One frame of a query head as a function of its memory state.

    ``forward(state, *args, **kwargs)`` loads ``state`` (the tensors of
    ``MemoryQueue.state()``, as a dict) into ``head.memory``, runs ``head(*args, **kwargs)``
    and returns ``(outputs, new state)``: nothing of the stream lives outside the arguments
    and the result, so the frame can be captured with the state as static buffers.
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, state: dict[str, torch.Tensor], *args: Any, **kwargs: Any) -> tuple[Any, dict[str, torch.Tensor]]:
        """``(head outputs, the memory's state after the frame)``."""
        self.head.memory.load_state(state)
        outputs = self.head(*args, **kwargs)
        return outputs, self.head.memory.state()


class CudaGraphHead(nn.Module):
    """A query head whose frames replay a CUDA graph, its memory queue explicit static state.

    A frame with an empty memory (the first of a stream, or after ``reset_memory``) or one
    held for another batch size runs the head eagerly (it allocates the queue). Every other
    frame runs :class:`MemoryStateFrame` on the queue's state, through a
    :class:`CudaGraphModule` when ``capture`` (else eagerly: the same state handling, e.g. to
    check it on CPU), and loads the new state back into the queue. Attributes the detector
    reads (``predict``, ``reset_memory``, ``memory``) are the wrapped head's.

    Args:
        head: a head with a ``memory`` (``MemoryQueue``) and a forward of one frame.
        capture: capture the frame in a CUDA graph (CUDA inputs needed).
    """

    def __init__(self, head: nn.Module, capture: bool = True) -> None:
        super().__init__()
        self.head = head
        self.frame = MemoryStateFrame(head)
        self.runner: nn.Module = CudaGraphModule(self.frame) if capture else self.frame
        self._batch_size: Optional[int] = None

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules", {})
            if "head" not in modules:
                raise
            return getattr(modules["head"], name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """One frame: eager when the memory is empty or of another batch size, else replayed."""
        state = self.head.memory.state()
        batch_size = None if not state else state["embedding"].shape[0]
        if batch_size is None or self._batch_size not in (None, batch_size):
            return self.head(*args, **kwargs)
        self._batch_size = batch_size
        outputs, new_state = self.runner(state, *args, **kwargs)
        self.head.memory.load_state(new_state)
        return outputs


def accelerate(model: nn.Module, compile_mode: Optional[str] = None, compile_backend: str = "inductor",
               cuda_graphs: bool = False, cuda_graph_head: bool = False) -> dict[str, str]:
    """Wrap the detector's parts in place; returns part -> how it now runs.

    Args:
        model: a detector with ``img_backbone``, ``img_neck`` and ``pts_bbox_head``, weights loaded.
        compile_mode: ``torch.compile`` mode, or None for no compilation.
        compile_backend: ``torch.compile`` backend (``mode`` is passed to inductor only).
        cuda_graphs: capture the backbone and the neck in CUDA graphs (these are then not
            compiled; the head still is when ``compile_mode`` is given, unless ``cuda_graph_head``).
        cuda_graph_head: capture the head's frames too (:class:`CudaGraphHead`).
    """
    missing = [name for name in FEATURE_PARTS + (HEAD_PART,) if not isinstance(getattr(model, name, None), nn.Module)]
    if missing:
        raise ValueError(f"{type(model).__name__} lacks the parts {missing} that --compile / --cuda-graphs wrap")
    options = dict(backend=compile_backend)
    if compile_backend == "inductor":
        options["mode"] = compile_mode
    graph_wrappers: dict[str, tuple[Callable[[nn.Module], nn.Module], str]] = {
        name: (CudaGraphModule, "cuda graph") for name in FEATURE_PARTS if cuda_graphs}
    if cuda_graph_head:
        graph_wrappers[HEAD_PART] = (CudaGraphHead, "cuda graph (memory as static state; first frame eager)")
    plan = {name: "eager" for name in FEATURE_PARTS + (HEAD_PART,)}
    for name in plan:
        if name in graph_wrappers:
            wrap, how = graph_wrappers[name]
        elif compile_mode is not None:
            wrap, how = functools.partial(torch.compile, **options), f"compiled ({compile_backend}, {compile_mode})"
        else:
            continue
        setattr(model, name, wrap(getattr(model, name)))
        plan[name] = how
    return plan


def predictor(model: nn.Module, precision: str, device: torch.device,
              cuda_graphs: bool = False) -> Callable[[dict[str, Any]], list[dict[str, torch.Tensor]]]:
    """``run(batch)``: ``model(batch, mode='predict')`` under ``no_grad`` and ``precision``."""
    check_precision(precision, device)

    def run(batch: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        with torch.no_grad(), precision_context(precision, device, cache_enabled=not cuda_graphs):
            return model(batch, mode="predict")
    return run
