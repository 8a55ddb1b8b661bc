"""The interfaces every model the engine trains, and every detector, implements.

:class:`StreamingModel` is what the engine, the trainer module and the tools call: weight
initialisation (pretrained parts), the temporal memory, and ``forward(batch, mode)``.
The distiller is one; so is every detector.

:class:`StreamingDetector` adds what the distiller, the ONNX export, the benchmarks and the
pictures need from a plain detector: its parts (``img_backbone``, ``img_neck``,
``img_roi_head``, ``pts_bbox_head``), the image features, one frame of the 3D head without
targets, and the precision of its image features in training.

Both are abstract base classes: a detector that lacks one of the methods cannot be
instantiated, so a missing ``init_weights`` (the silent bug of issue #11: the backbone's
``init_cfg`` never loaded) is a ``TypeError`` when the model is built, not a from-scratch
backbone. :func:`build_detector` and :func:`check_streaming_model` reject objects that do
not implement the interfaces, naming the config ``type``.
"""
from __future__ import annotations

import abc
import contextlib
import copy
from typing import Any, Iterator, Mapping, Optional

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ..utils.grid_mask import GridMask

MODES = ("loss", "predict")
#: The batch keys a 2D auxiliary head's ``loss`` takes, in its argument order.
ROI_LOSS_KEYS = ("gt_bboxes", "gt_labels", "centers2d")
#: GridMask settings of the upstream StreamPETR / RayDN detectors (``grid_mask_cfg`` default).
GRID_MASK_DEFAULTS = dict(use_h=True, use_w=True, rotate=1, offset=False, ratio=0.5, mode=1, prob=0.7)
#: Autocast dtypes the image features may run in during training (upstream's ``fp16`` hook).
FEATURE_DTYPES = (torch.float16, torch.bfloat16)


class StreamingModel(nn.Module, abc.ABC):
    """A streaming model the engine trains and evaluates (a detector or a distiller)."""

    @abc.abstractmethod
    def init_weights(self) -> None:
        """Load the pretrained parts named in the config (backbone ``init_cfg``); building
        a model does no I/O."""

    @abc.abstractmethod
    def reset_memory(self) -> None:
        """Forget the temporal memory of every batch slot."""

    @abc.abstractmethod
    def forward(self, batch: Mapping[str, Any], mode: str = "loss") -> Any:
        """``mode='loss'``: dict of named scalar losses; ``mode='predict'``: a list of B dicts
        ``boxes_3d (K, 9)``, ``scores_3d (K,)``, ``labels_3d (K,)`` (docs/data_contract.md)."""


class StreamingDetector(StreamingModel):
    """A plain streaming multi-camera 3D detector (StreamPETR's ``Petr3D``, RayDN's ``RepDetr3D``).

    Subclasses build ``img_backbone``, ``img_neck`` (or None), ``img_roi_head`` (or None) and
    ``pts_bbox_head`` and implement the abstract methods. :meth:`init_weights` initialises
    every part that has pretrained weights to load.
    """

    img_backbone: nn.Module
    img_neck: Optional[nn.Module]
    img_roi_head: Optional[nn.Module]
    pts_bbox_head: nn.Module
    #: Whether the 3D head reads ``extrinsics`` (RayDN's camera MLN does, StreamPETR not).
    reads_extrinsics: bool = True

    def __init__(self) -> None:
        super().__init__()
        self._feature_dtype: Optional[torch.dtype] = None

    def init_weights(self) -> None:
        """Initialise backbone, neck and 2D head from their configs (the backbone's
        ``init_cfg`` loads its pretrained checkpoint); the 3D head initialises itself when built."""
        for part in (self.img_backbone, self.img_neck, self.img_roi_head):
            init = getattr(part, "init_weights", None) if part is not None else None
            if init is not None:
                init()

    def reset_memory(self) -> None:
        """Forget the temporal memory of every batch slot."""
        self.pts_bbox_head.reset_memory()

    @property
    def runs_2d_head_in_predict(self) -> bool:
        """Whether ``predict`` runs ``img_roi_head`` (False: it is a training-only auxiliary)."""
        return False

    @abc.abstractmethod
    def extract_feat(self, img: Tensor) -> list[Tensor]:
        """Image features the 3D head reads: one ``(B, N, C, H / s, W / s)`` map per level,
        from images ``(B, N, 3, H, W)``."""

    @abc.abstractmethod
    def head_outputs(self, feats: list[Tensor], geometry: Mapping[str, Tensor],
                     pad_shape: tuple[int, int]) -> dict[str, Tensor]:
        """One frame of the 3D head without targets (inference, export).

        Args:
            feats: :meth:`extract_feat`'s maps.
            geometry: ``lidar2img``, ``intrinsics``, ``extrinsics``, ``ego_pose``,
                ``ego_pose_inv``, ``timestamp``, ``prev_exists`` (docs/data_contract.md).
            pad_shape: ``(H, W)`` of the padded images.

        Returns:
            The head's raw outputs: ``all_cls_scores (L, B, Q, C)``, ``all_bbox_preds
            (L, B, Q, 10)``, ... (what ``pts_bbox_head.predict`` decodes).
        """

    def set_feature_precision(self, dtype: Optional[torch.dtype]) -> None:
        """Run the image features (backbone and neck) under autocast to ``dtype`` in training,
        outputs cast back to float32, as upstream's ``@auto_fp16`` on ``extract_feat`` does
        under the ``fp16`` optimizer hook; ``None``: float32. Evaluation always runs float32."""
        if dtype is not None and dtype not in FEATURE_DTYPES:
            raise ValueError(f"set_feature_precision: dtype must be one of {FEATURE_DTYPES} or None, got {dtype}")
        self._feature_dtype = dtype

    @contextlib.contextmanager
    def feature_autocast(self, device: torch.device) -> Iterator[None]:
        """The autocast region of the image features (see :meth:`set_feature_precision`)."""
        dtype = self._feature_dtype
        if dtype is None or not self.training:
            yield
            return
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


def build_grid_mask(grid_mask_cfg: Optional[Mapping[str, Any]], owner: str) -> GridMask:
    """The training GridMask: :data:`GRID_MASK_DEFAULTS` updated with ``grid_mask_cfg``.

    Raises:
        ValueError: a key of ``grid_mask_cfg`` is not a GridMask argument (named with ``owner``).
    """
    cfg = dict(GRID_MASK_DEFAULTS)
    unknown = sorted(set(grid_mask_cfg or {}) - set(cfg))
    if unknown:
        raise ValueError(f"{owner} grid_mask_cfg keys {unknown} are not GridMask arguments; "
                         f"known: {sorted(cfg)}")
    cfg.update(grid_mask_cfg or {})
    return GridMask(**cfg)


def head_cfg(pts_bbox_head: Mapping[str, Any], train_cfg: Optional[Mapping[str, Any]],
             test_cfg: Optional[Mapping[str, Any]], owner: str) -> dict:
    """The 3D head config with ``train_cfg['pts']`` filled in (mmdet3d's convention).

    Args:
        pts_bbox_head: the head config.
        train_cfg: None or ``dict(pts=...)``.
        test_cfg: None, or empty (decoding is configured by the head's ``bbox_coder``).
        owner: the detector, as errors name it.

    Raises:
        ValueError: ``train_cfg`` has keys other than ``pts``; the head's train_cfg is given
            both there and in ``pts_bbox_head``; ``test_cfg`` is not empty.
    """
    if test_cfg and any(value for value in dict(test_cfg).values()):
        raise ValueError(f"{owner}: test_cfg={dict(test_cfg)} is not used; decoding is set by "
                         f"pts_bbox_head.bbox_coder")
    cfg = copy.deepcopy(dict(pts_bbox_head))
    if not train_cfg:
        return cfg
    if set(train_cfg) != {"pts"}:
        raise ValueError(f"{owner} train_cfg takes only the key 'pts', got {sorted(train_cfg)}")
    if cfg.get("train_cfg") is not None:
        raise ValueError(f"{owner}: give the head's train_cfg either in train_cfg.pts or in "
                         f"pts_bbox_head.train_cfg, not both")
    cfg["train_cfg"] = copy.deepcopy(dict(train_cfg["pts"]))
    return cfg


def image_pad_shape(img: Tensor) -> tuple[int, int]:
    """``(H, W)`` of padded images ``(..., H, W)``: the ``pad_shape`` the heads take."""
    return int(img.shape[-2]), int(img.shape[-1])


def check_streaming_model(model: Any, what: str) -> StreamingModel:
    """``model`` if it implements :class:`StreamingModel`, else a ``TypeError`` naming ``what``."""
    if not isinstance(model, StreamingModel):
        raise TypeError(f"{what} builds a {type(model).__name__}, which does not implement the "
                        f"StreamingModel interface (models/detectors/base.py: init_weights, "
                        f"reset_memory, forward(batch, mode))")
    return model


def build_detector(cfg: Mapping[str, Any], what: str = "model") -> StreamingDetector:
    """``MODELS.build(cfg)``, checked to be a :class:`StreamingDetector`.

    Args:
        cfg: a detector config (``type='RepDetr3D'`` / ``'Petr3D'`` / any registered
            StreamingDetector).
        what: how to name the config in errors (e.g. ``'the teacher config'``).
    """
    model = MODELS.build(dict(cfg))
    if not isinstance(model, StreamingDetector):
        raise TypeError(f"{what} (type={dict(cfg).get('type')!r}) builds a {type(model).__name__}, "
                        f"not a StreamingDetector (models/detectors/base.py); a plain detector "
                        f"config is needed here")
    return model
