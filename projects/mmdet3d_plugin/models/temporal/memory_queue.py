"""The temporal memory queue of streaming query detectors (StreamPETR, RayDN).

Each batch slot keeps the last ``memory_len`` object queries it pushed: their embeddings,
reference points, timestamps, ego poses and velocities. Between frames the queue is held
in the **global** frame (reference points and poses) with timestamps stored as
``-t_push``; :meth:`MemoryQueue.pre_update` moves everything into the LiDAR frame of the
current sample (reference points through ``ego_pose_inv``, poses as the relative motion
``ego_pose_inv @ pose``, timestamps as the age in seconds) and clears the slots whose
sample starts a new scene. :meth:`MemoryQueue.push` prepends the newest entries (given in
the current frame, detached) and moves the queue back to the global frame.

The queue is plain state, not an ``nn.Module``: it never reaches a state dict, and
:meth:`MemoryQueue.reset` drops it explicitly. Its updates run in float32 (float64 for
timestamps) with autocast disabled: global coordinates reach thousands of metres, far
beyond what float16 resolves.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...core.bbox.box_layout import CODE_VX, CODE_VY, CODE_X, CODE_Z
from ..utils.misc import memory_refresh, topk_gather, transform_reference_points


_STATE_FIELDS = ("embedding", "reference_point", "timestamp", "egopose", "velo")


class MemoryQueue:
    """Fixed-length per-sample memory of propagated queries.

    Args:
        memory_len: Number of entries kept per batch slot.
        embed_dims: Channels of a stored query embedding.
        velo_dims: Channels of a stored velocity (2 for ``vx, vy``).

    Attributes (``None`` until the first :meth:`pre_update`; shapes with ``L = memory_len``):
        embedding: ``(B, L, C)`` query embeddings.
        reference_point: ``(B, L, 3)`` metric reference points (current frame after
            :meth:`pre_update`, global frame after :meth:`push`).
        timestamp: ``(B, L, 1)`` float64, the age in seconds after :meth:`pre_update`.
        egopose: ``(B, L, 4, 4)`` pose of the frame an entry was pushed from, relative to
            the current frame after :meth:`pre_update`.
        velo: ``(B, L, velo_dims)`` velocities predicted when the entry was pushed.
    """

    def __init__(self, memory_len: int, embed_dims: int, velo_dims: int = 2) -> None:
        if memory_len <= 0 or embed_dims <= 0 or velo_dims <= 0:
            raise ValueError(
                f"MemoryQueue needs positive sizes, got memory_len={memory_len}, "
                f"embed_dims={embed_dims}, velo_dims={velo_dims}"
            )
        self.memory_len = memory_len
        self.embed_dims = embed_dims
        self.velo_dims = velo_dims
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next :meth:`pre_update` starts every slot afresh."""
        self.embedding: Tensor | None = None
        self.reference_point: Tensor | None = None
        self.timestamp: Tensor | None = None
        self.egopose: Tensor | None = None
        self.velo: Tensor | None = None

    def state(self) -> dict[str, Tensor]:
        """A copy of the held tensors (empty when nothing is held), e.g. for a checkpoint."""
        if self.is_empty:
            return {}
        return {name: getattr(self, name).detach().clone() for name in _STATE_FIELDS}

    def load_state(self, state: dict[str, Tensor]) -> None:
        """Hold a copy of ``state`` (from :meth:`state`); an empty state resets the queue."""
        if not state:
            self.reset()
            return
        missing = [name for name in _STATE_FIELDS if name not in state]
        if missing:
            raise KeyError(f"memory state lacks {missing}; expected the keys {list(_STATE_FIELDS)}")
        for name in _STATE_FIELDS:
            setattr(self, name, state[name].detach().clone())

    @property
    def is_empty(self) -> bool:
        """True when no state is held (before the first frame or after :meth:`reset`)."""
        return self.embedding is None

    def normalised_reference_points(self, pc_range: Tensor) -> Tensor:
        """The held reference points ``(B, L, 3)`` normalised to ``pc_range`` ``(6,)``
        ``[x0, y0, z0, x1, y1, z1]`` (in the current frame after :meth:`pre_update`)."""
        return (self.reference_point - pc_range[:3]) / (pc_range[3:] - pc_range[:3])

    def _allocate(self, batch_size: int, device: torch.device) -> None:
        """Zero state for ``batch_size`` slots on ``device``."""
        length = self.memory_len
        self.embedding = torch.zeros(batch_size, length, self.embed_dims, device=device)
        self.reference_point = torch.zeros(batch_size, length, 3, device=device)
        self.timestamp = torch.zeros(batch_size, length, 1, dtype=torch.float64, device=device)
        self.egopose = torch.zeros(batch_size, length, 4, 4, device=device)
        self.velo = torch.zeros(batch_size, length, self.velo_dims, device=device)

    def _holds_state_for(self, batch_size: int, device: torch.device) -> bool:
        """Whether the held state matches this batch size and device."""
        return (
            self.embedding is not None
            and self.embedding.shape[0] == batch_size
            and self.embedding.device == device
        )

    def pre_update(
        self,
        prev_exists: Tensor,
        timestamp: Tensor,
        ego_pose_inv: Tensor,
        pseudo_reference_points: Tensor | None = None,
    ) -> None:
        """Move the memory into the current frame and clear slots of new scenes.

        Args:
            prev_exists: ``(B,)`` bool/float, False where the sample starts a scene.
            timestamp: ``(B,)`` float64 seconds of the current sample.
            ego_pose_inv: ``(B, 4, 4)`` global -> current LiDAR frame.
            pseudo_reference_points: optional ``(P, 3)`` metric points in the current
                frame written into the first ``P`` slots of every cleared sample (their
                pose becomes the identity).

        A slot is cleared where ``prev_exists`` is False, and every slot is cleared when
        the queue is empty or was filled for another batch size or device.
        """
        with torch.autocast(device_type=prev_exists.device.type, enabled=False):
            self._pre_update(prev_exists, timestamp, ego_pose_inv, pseudo_reference_points)

    def _pre_update(self, prev_exists: Tensor, timestamp: Tensor, ego_pose_inv: Tensor,
                    pseudo_reference_points: Tensor | None) -> None:
        """Body of :meth:`pre_update` (full precision)."""
        batch_size, device = prev_exists.shape[0], prev_exists.device
        keep = prev_exists.to(torch.float32)
        if not self._holds_state_for(batch_size, device):
            self._allocate(batch_size, device)
            keep = torch.zeros_like(keep)
        ego_pose_inv = ego_pose_inv.to(torch.float32)
        self.timestamp = memory_refresh(
            self.timestamp + timestamp.to(torch.float64).view(-1, 1, 1), keep.double()
        )
        self.egopose = memory_refresh(ego_pose_inv.unsqueeze(1) @ self.egopose, keep)
        self.reference_point = memory_refresh(
            transform_reference_points(self.reference_point, ego_pose_inv), keep
        )
        self.embedding = memory_refresh(self.embedding, keep)
        self.velo = memory_refresh(self.velo, keep)
        if pseudo_reference_points is not None:
            self._fill_pseudo(pseudo_reference_points.float(), 1.0 - keep)

    def _fill_pseudo(self, pseudo_reference_points: Tensor, cleared: Tensor) -> None:
        """Write ``(P, 3)`` pseudo points and identity poses into cleared slots' heads."""
        num = pseudo_reference_points.shape[0]
        if num > self.memory_len:
            raise ValueError(
                f"{num} pseudo reference points do not fit a memory of length {self.memory_len}"
            )
        cleared = cleared.view(-1, 1, 1)
        eye = torch.eye(4, device=cleared.device)
        reference_point = self.reference_point.clone()
        egopose = self.egopose.clone()
        reference_point[:, :num] = reference_point[:, :num] + cleared * pseudo_reference_points
        egopose[:, :num] = egopose[:, :num] + cleared.unsqueeze(-1) * eye
        self.reference_point, self.egopose = reference_point, egopose

    def push(
        self,
        embedding: Tensor,
        reference_point: Tensor,
        velo: Tensor,
        ego_pose: Tensor,
        timestamp: Tensor,
        egopose: Tensor | None = None,
    ) -> None:
        """Prepend ``K`` new entries and move the whole queue to the global frame.

        Args:
            embedding: ``(B, K, C)`` query embeddings (detached here).
            reference_point: ``(B, K, 3)`` metric points in the current frame.
            velo: ``(B, K, velo_dims)`` velocities.
            ego_pose: ``(B, 4, 4)`` current LiDAR frame -> global.
            timestamp: ``(B,)`` float64 seconds of the current sample.
            egopose: optional ``(B, K, 4, 4)`` poses of the entries relative to the current
                frame; the identity when omitted.
        """
        if self.embedding is None:
            raise RuntimeError("MemoryQueue.push called before pre_update for this frame")
        with torch.autocast(device_type=embedding.device.type, enabled=False):
            self._push(embedding, reference_point, velo, ego_pose, timestamp, egopose)

    def push_most_confident(self, k: int, cls_scores: Tensor, bbox_preds: Tensor,
                            query_feats: Tensor, ego_pose: Tensor, timestamp: Tensor) -> None:
        """:meth:`push` the ``k`` queries of highest class score of each sample.

        Args:
            k: entries pushed per sample.
            cls_scores: ``(B, Q, C)`` logits; bbox_preds: ``(B, Q, 10)`` box codes (metric
                centres); query_feats: ``(B, Q, C')`` decoder outputs of the queries.
            ego_pose: ``(B, 4, 4)``; timestamp: ``(B,)`` float64, as for :meth:`push`.
        """
        scores = cls_scores.detach().sigmoid().max(dim=-1, keepdim=True).values
        _, index = torch.topk(scores, k, dim=1)
        self.push(embedding=topk_gather(query_feats, index),
                  reference_point=topk_gather(bbox_preds[..., CODE_X:CODE_Z + 1], index),
                  velo=topk_gather(bbox_preds[..., CODE_VX:CODE_VY + 1], index),
                  ego_pose=ego_pose, timestamp=timestamp)

    def _push(self, embedding: Tensor, reference_point: Tensor, velo: Tensor, ego_pose: Tensor,
              timestamp: Tensor, egopose: Tensor | None) -> None:
        """Body of :meth:`push` (full precision)."""
        batch_size, num = embedding.shape[:2]
        if egopose is None:
            egopose = torch.eye(4, device=embedding.device).expand(batch_size, num, 4, 4)
        new_time = torch.zeros(batch_size, num, 1, dtype=torch.float64, device=embedding.device)
        length = self.memory_len
        self.embedding = torch.cat([embedding.detach().float(), self.embedding], 1)[:, :length]
        self.velo = torch.cat([velo.detach().float(), self.velo], 1)[:, :length]
        self.timestamp = torch.cat([new_time, self.timestamp], 1)[:, :length]
        self.timestamp = self.timestamp - timestamp.to(torch.float64).view(-1, 1, 1)
        ego_pose = ego_pose.to(torch.float32)
        points = torch.cat([reference_point.detach().float(), self.reference_point], 1)
        self.reference_point = transform_reference_points(points[:, :length], ego_pose)
        poses = torch.cat([egopose.detach().float(), self.egopose], 1)[:, :length]
        self.egopose = ego_pose.unsqueeze(1) @ poses


def find_memory_queues(module: nn.Module) -> dict[str, MemoryQueue]:
    """Every :class:`MemoryQueue` held by ``module`` or its submodules, by dotted name.

    E.g. ``{'pts_bbox_head.memory': ...}`` for a detector, or
    ``{'teacher.pts_bbox_head.memory': ..., 'student.pts_bbox_head.memory': ...}`` for a
    distiller.
    """
    queues: dict[str, MemoryQueue] = {}
    for prefix, sub in module.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, MemoryQueue):
                queues[f"{prefix}.{attr}" if prefix else attr] = value
    return queues

