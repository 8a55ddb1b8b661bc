"""Export a streaming student to ONNX and check it against PyTorch over a frame sequence.

The graph is :class:`StreamingExportWrapper` traced with the TorchScript exporter
(``dynamo=False``: it needs no extra package), opset >= 17, standard ONNX operators only
(``linalg_inv`` of StreamPETR's camera matrices is written out with
:mod:`.onnx_symbolics`). The batch dimension is dynamic; cameras, image size, queries and
memory length are fixed by the traced model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .onnx_symbolics import standard_op_symbolics
from .streaming_wrapper import (FRAME_INPUTS, INPUT_NAMES, MEMORY_INPUTS, OUTPUT_NAMES,
                                StreamingExportWrapper, frame_inputs, initial_memory)

MIN_OPSET = 17


def export_streaming_onnx(detector: nn.Module, example_frame: Mapping[str, Tensor],
                          path: str | Path, opset: int = MIN_OPSET, dynamic_batch: bool = True
                          ) -> Path:
    """Write ``detector`` (RepDetr3D / Petr3D) as one-frame ONNX graph with memory I/O.

    Args:
        detector: the built student, weights loaded.
        example_frame: a batch with the frame inputs (see :func:`frame_inputs`); its shapes
            fix cameras and image size.
        path: the ``.onnx`` file to write (parent folders are created).
        opset: ONNX opset, at least 17.
        dynamic_batch: make the leading dimension of every input and output symbolic.

    Returns:
        The written path. Inputs the detector does not read (``extrinsics`` for Petr3D)
        are not graph inputs; see :func:`onnx_input_names`.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (LayerNormalization, GridSample), got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = StreamingExportWrapper(detector)
    frame = frame_inputs(example_frame)
    memory = initial_memory(wrapper.head, frame["img"].shape[0], frame["img"].device)
    args = tuple(frame[name] for name in FRAME_INPUTS) + tuple(memory[name] for name in MEMORY_INPUTS)
    dynamic_axes = {name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES} if dynamic_batch else None
    with torch.no_grad(), standard_op_symbolics(opset):
        torch.onnx.export(wrapper, args, str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), opset_version=opset, dynamo=False,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    return path


def onnx_input_names(path: str | Path) -> list[str]:
    """The graph inputs of an exported file, in order."""
    import onnx

    return [value.name for value in onnx.load(str(path), load_external_data=False).graph.input]


def torch_stream(detector: nn.Module, frames: Sequence[Mapping[str, Tensor]]) -> list[tuple[Tensor, ...]]:
    """PyTorch outputs (``OUTPUT_NAMES`` order) of the wrapper over ``frames``, feeding the
    memory outputs of each frame into the next."""
    wrapper = StreamingExportWrapper(detector)
    outputs = []
    memory = None
    for raw in frames:
        frame = frame_inputs(raw)
        if memory is None:
            memory = initial_memory(wrapper.head, frame["img"].shape[0], frame["img"].device)
        with torch.no_grad():
            out = wrapper(*(frame[name] for name in FRAME_INPUTS), *(memory[name] for name in MEMORY_INPUTS))
        outputs.append(out)
        memory = dict(zip(MEMORY_INPUTS, out[2:]))
    return outputs


def check_parity(detector: nn.Module, onnx_path: str | Path,
                 frames: Sequence[Mapping[str, Tensor]]) -> list[dict[str, float]]:
    """Max absolute difference between PyTorch and onnxruntime, per frame and output.

    Both run the same ``frames`` as one stream, each feeding back its own memory outputs.

    Returns:
        One dict per frame: output name -> max |torch - onnxruntime|.
    """
    from .ort_runner import OrtStreamingSession

    session = OrtStreamingSession(onnx_path)
    session.reset(int(frames[0]["img"].shape[0]))
    reports = []
    for frame, expected in zip(frames, torch_stream(detector, frames)):
        got = session.step({k: v.numpy() for k, v in frame_inputs(frame).items()})
        reports.append({name: float(np.abs(value.numpy() - got[name]).max())
                        for name, value in zip(OUTPUT_NAMES, expected)})
    return reports
