"""Detection losses of a batch in which only some samples are labelled (label-scarce training).

A batch may carry ``gt_labelled`` ``(B,)`` bool (``docs/data_contract.md``); without it, or
with every entry True, every sample is labelled and the detectors compute their losses as
always. Otherwise the heads still run forward on the whole batch (the temporal memory and
any distillation tap need every frame), but:

* the 3D set losses (Hungarian matching) see only the labelled samples: the head's
  ``all_cls_scores`` / ``all_bbox_preds`` ``(L, B, Q, ...)`` and the GT lists are indexed by
  them, so an unlabelled frame is neither positive nor "background everywhere";
* the denoising losses (``dn_loss_*``, ``d{i}.dn_loss_*``) keep the whole batch: their queries
  come from the GT (empty on an unlabelled frame) and from teacher pseudo labels, which are
  legitimate on every frame;
* the 2D auxiliary losses see only the labelled samples' images.

When no sample is labelled the losses are computed on sample 0 with its GT emptied and then
multiplied by zero (the DN losses kept): every key is still returned, each a zero in the
autograd graph, and every rank runs the same loss code (the same collective calls) as one
with labelled samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TypeVar

import torch
from torch import Tensor, nn

DN_LOSS_MARKER = "dn_loss"
_QUERY_OUTPUTS = ("all_cls_scores", "all_bbox_preds")
_GT_KEYS = ("gt_bboxes_3d", "gt_bboxes")
T = TypeVar("T")


def is_dn_loss(key: str) -> bool:
    """Whether a loss key names a denoising loss (``dn_loss_cls``, ``d0.dn_loss_bbox``, ...)."""
    return DN_LOSS_MARKER in key


def _empty(value: Any) -> Any:
    """A GT entry with 0 rows: a tensor ``(M, ...)`` -> ``(0, ...)``, or a per-camera list of them."""
    if isinstance(value, (list, tuple)):
        return [_empty(item) for item in value]
    return value[:0]


def _num_rows(value: Any) -> int:
    """Rows of a GT entry (a tensor, or the sum over a per-camera list)."""
    if isinstance(value, (list, tuple)):
        return sum(_num_rows(item) for item in value)
    return int(value.shape[0])


@dataclass(frozen=True)
class LabelledSamples:
    """The samples of a batch whose ground truth drives the losses.

    Attributes:
        batch_size: B.
        index: the labelled samples in batch order; ``(0,)`` when none is labelled.
        any_labelled: False when no sample is labelled: losses are then computed on sample 0
            with its GT emptied and zeroed by :meth:`finish`.
    """

    batch_size: int
    index: tuple[int, ...]
    any_labelled: bool

    @classmethod
    def from_batch(cls, batch: Mapping[str, Any], batch_size: int) -> "LabelledSamples":
        """Read ``batch['gt_labelled']`` ``(B,)`` bool (absent: every sample labelled).

        Raises:
            ValueError: ``gt_labelled`` is not B booleans, or an unlabelled sample carries
                ground truth (its ``gt_bboxes_3d`` / ``gt_bboxes`` must be empty).
        """
        if batch.get("gt_labelled") is None:
            return cls(batch_size, tuple(range(batch_size)), True)
        flags = torch.as_tensor(batch["gt_labelled"])
        if flags.dtype != torch.bool or tuple(flags.shape) != (batch_size,):
            raise ValueError(f"batch['gt_labelled'] must be a ({batch_size},) bool tensor (one flag per "
                             f"sample), got dtype {flags.dtype} and shape {tuple(flags.shape)}")
        labelled = tuple(int(b) for b in torch.nonzero(flags.cpu()).flatten())
        for key in _GT_KEYS:
            leaking = [b for b in range(batch_size) if b not in labelled and key in batch
                       and _num_rows(batch[key][b]) > 0]
            if leaking:
                tokens = [batch["sample_idx"][b] for b in leaking] if "sample_idx" in batch else leaking
                raise ValueError(f"samples {leaking} (tokens {tokens}) have gt_labelled=False but carry "
                                 f"{key}; an unlabelled sample must carry empty ground truth (the "
                                 f"dataset empties it when labelled_fraction < 1)")
        return cls(batch_size, labelled or (0,), bool(labelled))

    @property
    def is_full(self) -> bool:
        """Every sample is labelled: each method returns its input unchanged."""
        return self.any_labelled and len(self.index) == self.batch_size

    def gt(self, values: Sequence[T]) -> Sequence[T]:
        """Per-sample GT (B entries: tensors, or per-camera lists) of the loss samples."""
        if self.is_full:
            return values
        if not self.any_labelled:
            return [_empty(values[0])]
        return [values[b] for b in self.index]

    def samples(self, tensor: Tensor) -> Tensor:
        """``(B, ...)`` -> ``(K, ...)``: e.g. image features ``(B, N, C, H, W)``."""
        if self.is_full:
            return tensor
        return tensor[torch.tensor(self.index, device=tensor.device)]

    def images(self, tensor: Tensor, num_cams: int) -> Tensor:
        """``(B * N, ...)`` per-image outputs -> ``(K * N, ...)`` of the loss samples."""
        if self.is_full:
            return tensor
        return tensor.unflatten(0, (self.batch_size, num_cams))[list(self.index)].flatten(0, 1)

    def per_image_outputs(self, outputs: Mapping[str, Any], num_cams: int) -> dict[str, Any]:
        """A 2D head's forward output restricted to the loss samples.

        Tensors with a leading ``B * N`` dimension are per image, those with a leading ``B``
        per sample (the same rows when ``N == 1``); lists are handled item by item; None stays.
        """
        if self.is_full:
            return dict(outputs)
        return {key: self._select_output(key, value, num_cams) for key, value in outputs.items()}

    def _select_output(self, key: str, value: Any, num_cams: int) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return [self._select_output(key, item, num_cams) for item in value]
        if value.shape[0] == self.batch_size * num_cams:
            return self.images(value, num_cams)
        if value.shape[0] == self.batch_size:
            return self.samples(value)
        raise ValueError(f"cannot restrict the 2D head output {key!r} of shape {tuple(value.shape)} to "
                         f"the labelled samples: its leading dimension is neither B * N = "
                         f"{self.batch_size * num_cams} (per image) nor B = {self.batch_size}")

    def queries(self, preds: Mapping[str, Any]) -> dict[str, Any]:
        """A 3D head's output with ``all_cls_scores`` / ``all_bbox_preds`` ``(L, B, Q, ...)``
        restricted to ``(L, K, Q, ...)``; the DN entries (``dn``, ``dn_cls_scores``, ...) keep
        the whole batch."""
        if self.is_full:
            return dict(preds)
        index = torch.tensor(self.index, device=preds[_QUERY_OUTPUTS[0]].device)
        return {key: value[:, index] if key in _QUERY_OUTPUTS else value for key, value in preds.items()}

    def finish(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The losses as they are, or, when no sample is labelled, each non-DN loss times 0."""
        if self.any_labelled:
            return dict(losses)
        return {key: value if is_dn_loss(key) else value * 0.0 for key, value in losses.items()}


def head_losses_3d(head: nn.Module, batch: Mapping[str, Any], preds: Mapping[str, Any],
                   labelled: LabelledSamples) -> dict[str, Tensor]:
    """The 3D head's losses: set losses on the labelled samples, DN losses on the whole batch.

    Args:
        head: a 3D query head with ``loss(gt_bboxes_3d, gt_labels_3d, preds)``.
        batch: the batch with ``gt_bboxes_3d`` (B of ``(M_b, 9)``), ``gt_labels_3d`` (B of ``(M_b,)``).
        preds: the head's forward output on the whole batch.
        labelled: from :meth:`LabelledSamples.from_batch`.
    """
    losses = head.loss(labelled.gt(batch["gt_bboxes_3d"]), labelled.gt(batch["gt_labels_3d"]),
                       labelled.queries(preds))
    return labelled.finish(losses)
