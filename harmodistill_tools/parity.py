"""Numeric parity of an accelerated detector (precision, compile, CUDA graphs) with fp32 eager.

Both runs stream the same frames from a reset memory with the same weights. What is
compared is the 3D head's last decoder layer, query by query (the queries line up: same
learnable queries, and the propagated ones differ only as far as the memory has drifted):

* box centres (metres), box sizes (``exp`` of the log-size codes, metres): max / mean abs
  difference over the ``top_k`` queries of highest reference score per sample;
* scores (max class sigmoid): max / mean abs difference over those queries;
* labels: the share of those queries whose arg-max class agrees, and the overlap of the
  two runs' top-``k`` query sets.

Reported per frame, for the first frame alone (empty memory: the numeric error of one
forward) and as the worst / mean over frames. From the second frame on, the differences
also carry the memory's drift: a query pushed into the memory by one run and not by the
other propagates a different object, whose centre can be metres away. With random weights
the scores are nearly tied, so that happens often; trained weights separate them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from projects.mmdet3d_plugin.core.bbox.box_layout import CODE_LOG_H, CODE_LOG_L, CODE_X, CODE_Z

HEAD_ATTR = "pts_bbox_head"
METRICS = ("centre_max_m", "centre_mean_m", "size_max_m", "size_mean_m", "score_max", "score_mean",
           "label_agreement", "topk_overlap")


def record_head_outputs(model: nn.Module, run: Callable[[dict[str, Any]], Any],
                        batches: Sequence[dict[str, Any]]) -> list[dict[str, Tensor]]:
    """``run`` every batch in order from a reset memory; the last decoder layer's
    ``cls`` ``(B, Q, C)`` and ``bbox`` ``(B, Q, 10)`` (float32, CPU) of each frame."""
    outputs: list[dict[str, Tensor]] = []

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: dict) -> None:
        outputs.append(dict(cls=output["all_cls_scores"][-1].detach().float().cpu(),
                            bbox=output["all_bbox_preds"][-1].detach().float().cpu()))

    model.reset_memory()
    handle = getattr(model, HEAD_ATTR).register_forward_hook(hook, with_kwargs=True)
    try:
        for batch in batches:
            run(batch)
    finally:
        handle.remove()
    if len(outputs) != len(batches):
        raise RuntimeError(f"the head ran {len(outputs)} times for {len(batches)} frames")
    return outputs


def frame_parity(reference: dict[str, Tensor], other: dict[str, Tensor], top_k: int) -> dict[str, float]:
    """:data:`METRICS` of one frame (see the module docstring)."""
    if reference["cls"].shape != other["cls"].shape or reference["bbox"].shape != other["bbox"].shape:
        raise ValueError(f"head outputs differ in shape: {tuple(reference['cls'].shape)} vs "
                         f"{tuple(other['cls'].shape)}")
    k = min(top_k, reference["cls"].shape[1])
    ref_scores, ref_labels = reference["cls"].sigmoid().max(-1)
    scores, labels = other["cls"].sigmoid().max(-1)
    top = ref_scores.topk(k, dim=1).indices
    top_other = scores.topk(k, dim=1).indices

    def pick(values: Tensor) -> Tensor:
        return values.gather(1, top.view(*top.shape, *([1] * (values.dim() - 2))).expand(
            *top.shape, *values.shape[2:]))

    centre = (pick(reference["bbox"][..., CODE_X:CODE_Z + 1]) - pick(other["bbox"][..., CODE_X:CODE_Z + 1])).abs()
    size = (pick(reference["bbox"][..., CODE_LOG_L:CODE_LOG_H + 1]).exp()
            - pick(other["bbox"][..., CODE_LOG_L:CODE_LOG_H + 1]).exp()).abs()
    score = (pick(ref_scores) - pick(scores)).abs()
    overlap = [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(top, top_other)]
    return dict(centre_max_m=float(centre.max()), centre_mean_m=float(centre.mean()),
                size_max_m=float(size.max()), size_mean_m=float(size.mean()),
                score_max=float(score.max()), score_mean=float(score.mean()),
                label_agreement=float((pick(ref_labels) == pick(labels)).float().mean()),
                topk_overlap=float(sum(overlap) / len(overlap)))


def parity_report(reference: Sequence[dict[str, Tensor]], other: Sequence[dict[str, Tensor]],
                  top_k: int) -> dict[str, Any]:
    """Per-frame :func:`frame_parity` and the summary: the first frame, the worst frame for
    differences and agreement alike, and the mean over frames."""
    if len(reference) != len(other) or not reference:
        raise ValueError(f"parity needs the same positive number of frames, got {len(reference)} and {len(other)}")
    if top_k < 1:
        raise ValueError(f"--parity-top-k must be >= 1, got {top_k}")
    frames = [frame_parity(ref, oth, top_k) for ref, oth in zip(reference, other)]
    worst = {key: (min if key in ("label_agreement", "topk_overlap") else max)(f[key] for f in frames)
             for key in METRICS}
    mean = {key: sum(f[key] for f in frames) / len(frames) for key in METRICS}
    return dict(top_k=top_k, frames=frames, first_frame=frames[0], worst=worst, mean=mean)


def format_parity(report: dict[str, Any], what: str) -> str:
    """The parity table printed by ``tools/benchmark.py --parity``."""
    lines = [f"parity of {what} against fp32 eager over {len(report['frames'])} streaming frames, "
             f"top {report['top_k']} queries per sample:",
             f"{'':<12}" + "".join(f"{key:>16}" for key in METRICS)]
    for name in ("first_frame", "worst", "mean"):
        lines.append(f"{name:<12}" + "".join(f"{report[name][key]:>16.5f}" for key in METRICS))
    return "\n".join(lines)
