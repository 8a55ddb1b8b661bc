"""A streaming detector as a pure function of its inputs and its temporal memory.

:class:`StreamingExportWrapper` wraps a :class:`RepDetr3D` (RayDN) or :class:`Petr3D`
(StreamPETR) in eval mode. One call processes one frame: the five memory tensors come in
as inputs, are handed to the head's own :class:`MemoryQueue` (``load_state``), the
detector's own feature extractor and head ``forward`` run unchanged (the head moves the
memory into the frame, decodes, pushes its top-k queries), and the updated memory comes
out (``state``). Nothing is re-implemented, so the exported graph computes exactly what
``model(batch, mode='predict')`` computes.

Scene starts: ``prev_exists`` is an input; where it is False the head clears that slot's
memory and writes its pseudo reference points, as in PyTorch. A runtime therefore needs no
special case for a new scene (passing :func:`initial_memory` works as well: the head clears
a slot whose ``prev_exists`` is False either way).

Inputs (``B`` batch, ``N`` cameras, ``Lm`` memory length, ``C`` embed dims):

=========================  ======================  =========================================
name                       shape / dtype           meaning
=========================  ======================  =========================================
``img``                    (B, N, 3, H, W) f32     normalised, padded images
``lidar2img``              (B, N, 4, 4) f32        docs/data_contract.md
``intrinsics``             (B, N, 4, 4) f32
``extrinsics``             (B, N, 4, 4) f32        LiDAR -> camera (RayDN only)
``ego_pose``               (B, 4, 4) f32           LiDAR -> global
``ego_pose_inv``           (B, 4, 4) f32
``timestamp``              (B,) f64                seconds
``prev_exists``            (B,) bool               False on the first frame of a scene
``memory_embedding``       (B, Lm, C) f32          :class:`MemoryQueue` state, global frame
``memory_reference_point`` (B, Lm, 3) f32
``memory_timestamp``       (B, Lm, 1) f64          ``-t_push``
``memory_egopose``         (B, Lm, 4, 4) f32
``memory_velo``            (B, Lm, 2) f32
=========================  ======================  =========================================

Outputs: ``scores`` (B, Q, num_classes) sigmoid class scores and ``boxes`` (B, Q, 9) box
layout in the LiDAR frame for the ``Q = num_query + num_propagated`` queries of the last
decoder layer (NMS-free decoding, i.e. the top-k over ``Q * num_classes`` and the range
filter, is left to the runtime: :func:`decode_outputs`), then the five updated memory
tensors, named ``new_memory_*``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..core import batch_contract
from ..core.bbox.util import denormalize_bbox
from ..models.detectors.base import StreamingDetector, image_pad_shape

#: Frame inputs of the exported graph, in order.
FRAME_INPUTS = batch_contract.keys(batch_contract.IMAGES) + batch_contract.geometry_keys(with_extrinsics=True)
#: MemoryQueue fields, in the order of the memory inputs and outputs.
MEMORY_FIELDS = ("embedding", "reference_point", "timestamp", "egopose", "velo")
MEMORY_INPUTS = tuple(f"memory_{name}" for name in MEMORY_FIELDS)
MEMORY_OUTPUTS = tuple(f"new_memory_{name}" for name in MEMORY_FIELDS)
INPUT_NAMES = FRAME_INPUTS + MEMORY_INPUTS
OUTPUT_NAMES = ("scores", "boxes") + MEMORY_OUTPUTS


class StreamingExportWrapper(nn.Module):
    """One frame of a streaming detector with its memory as explicit inputs and outputs.

    Args:
        detector: a built :class:`RepDetr3D` or :class:`Petr3D` (its weights are shared,
            not copied). The wrapper puts it in eval mode.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        if not isinstance(detector, StreamingDetector):
            raise TypeError(f"StreamingExportWrapper needs a StreamingDetector (RepDetr3D, Petr3D, "
                            f"...), got {type(detector).__name__}")
        self.detector = detector.eval()

    @property
    def head(self) -> nn.Module:
        """The detector's 3D query head."""
        return self.detector.pts_bbox_head

    def forward(self, img: Tensor, lidar2img: Tensor, intrinsics: Tensor, extrinsics: Tensor,
                ego_pose: Tensor, ego_pose_inv: Tensor, timestamp: Tensor, prev_exists: Tensor,
                memory_embedding: Tensor, memory_reference_point: Tensor,
                memory_timestamp: Tensor, memory_egopose: Tensor, memory_velo: Tensor
                ) -> tuple[Tensor, ...]:
        """Run one frame (shapes in the module doc); returns ``OUTPUT_NAMES`` in order."""
        memory = self.head.memory
        memory.load_state(dict(zip(MEMORY_FIELDS, (
            memory_embedding, memory_reference_point, memory_timestamp, memory_egopose,
            memory_velo))))
        geometry = dict(lidar2img=lidar2img, intrinsics=intrinsics, extrinsics=extrinsics,
                        ego_pose=ego_pose, ego_pose_inv=ego_pose_inv, timestamp=timestamp,
                        prev_exists=prev_exists)
        preds = self.detector.head_outputs(self.detector.extract_feat(img), geometry, image_pad_shape(img))
        new_state = memory.state()
        memory.reset()
        scores = preds["all_cls_scores"][-1].sigmoid()
        boxes = denormalize_bbox(preds["all_bbox_preds"][-1])
        return (scores, boxes) + tuple(new_state[name] for name in MEMORY_FIELDS)


def initial_memory(head: nn.Module, batch_size: int, device: torch.device | str = "cpu"
                   ) -> dict[str, Tensor]:
    """The empty memory of ``batch_size`` slots (what the head allocates before a stream).

    Returns:
        ``MEMORY_INPUTS`` -> zeros: embedding ``(B, Lm, C)``, reference_point ``(B, Lm, 3)``,
        timestamp ``(B, Lm, 1)`` float64, egopose ``(B, Lm, 4, 4)``, velo ``(B, Lm, 2)``.
    """
    length, dims, velo = head.memory.memory_len, head.memory.embed_dims, head.memory.velo_dims
    return {
        "memory_embedding": torch.zeros(batch_size, length, dims, device=device),
        "memory_reference_point": torch.zeros(batch_size, length, 3, device=device),
        "memory_timestamp": torch.zeros(batch_size, length, 1, dtype=torch.float64, device=device),
        "memory_egopose": torch.zeros(batch_size, length, 4, 4, device=device),
        "memory_velo": torch.zeros(batch_size, length, velo, device=device),
    }


def frame_inputs(batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """The frame inputs of a collated batch (docs/data_contract.md), dtypes as exported.

    ``extrinsics`` is filled with the identity when a batch lacks it (Petr3D ignores it).
    """
    missing = [key for key in FRAME_INPUTS if key not in batch and key != "extrinsics"]
    if missing:
        raise KeyError(f"the batch lacks the export inputs {missing}; it has {sorted(batch)}")
    inputs = {key: batch[key] for key in FRAME_INPUTS if key in batch}
    if "extrinsics" not in inputs:
        inputs["extrinsics"] = torch.eye(4).expand_as(batch["lidar2img"]).clone()
    return {key: inputs[key].to(batch_contract.spec(key).dtype) for key in FRAME_INPUTS}


def decode_outputs(scores: Tensor, boxes: Tensor, coder: Any) -> list[dict[str, Tensor]]:
    """NMS-free decoding of exported outputs with the head's ``NMSFreeCoder``.

    Args:
        scores: ``(B, Q, C)`` sigmoid scores; boxes: ``(B, Q, 9)`` box layout.
        coder: the head's ``bbox_coder`` (``max_num``, ``post_center_range``,
            ``score_threshold``).

    Returns:
        B dicts ``boxes_3d (K, 9)``, ``scores_3d (K,)``, ``labels_3d (K,)`` as ``predict``.
    """
    results = []
    num_classes = scores.shape[-1]
    for sample_scores, sample_boxes in zip(scores, boxes):
        top, index = sample_scores.flatten().topk(min(coder.max_num, sample_scores.numel()))
        picked = sample_boxes[index // num_classes]
        keep = torch.ones_like(top, dtype=torch.bool)
        if coder.score_threshold:
            keep &= top >= coder.score_threshold
        if coder.post_center_range is not None:
            bounds = picked.new_tensor(coder.post_center_range)
            keep &= (picked[:, :3] >= bounds[:3]).all(1) & (picked[:, :3] <= bounds[3:]).all(1)
        results.append(dict(boxes_3d=picked[keep], scores_3d=top[keep],
                            labels_3d=(index % num_classes)[keep].long()))
    return results
