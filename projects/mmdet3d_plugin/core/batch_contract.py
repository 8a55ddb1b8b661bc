"""The batch contract: every key a sample or a batch may carry, declared once.

``docs/data_contract.md`` explains the frames and meanings; this module is what the code
reads. Each :class:`BatchKey` gives a key's group, its layout (how one sample holds it and
how :func:`~projects.mmdet3d_plugin.datasets.collate.collate_samples` batches it), its dtype
and the shape of one sample (named dimensions as strings: ``N`` cameras, ``H``/``W`` pixels,
``M`` objects, ``Mi`` objects of one camera, ``h``/``w`` cells of a strided grid).

Layouts:

* :data:`STACKED`: a tensor per sample, stacked to ``(B, *shape)``;
* :data:`OBJECTS`: a tensor ``(M, ...)`` per sample (rows vary), a list of B in a batch;
* :data:`CAMERA_OBJECTS`: a list of N tensors ``(Mi, ...)`` per sample, a list of B lists;
* :data:`VALUE`: a plain Python value (string, shape), a list of B in a batch.

The pipeline, the collation, the detectors, the distiller's teacher inputs, the ONNX export
and the dataset take their key lists from here (:func:`keys`, :func:`require`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

import torch

STACKED = "stacked"
OBJECTS = "objects"
CAMERA_OBJECTS = "camera_objects"
VALUE = "value"

IMAGES = "images"
GEOMETRY = "geometry"
META = "meta"
TARGETS_3D = "targets_3d"
TARGETS_2D = "targets_2d"
TARGETS_DEPTH = "targets_depth"
LABELLED = "labelled"
PSEUDO_LABELS = "pseudo_labels"
UPSTREAM_EXTRAS = "upstream_extras"

Dim = Union[int, str]


@dataclass(frozen=True)
class BatchKey:
    """One key of the contract.

    Attributes:
        name: the key.
        group: one of :data:`GROUPS`.
        layout: :data:`STACKED`, :data:`OBJECTS`, :data:`CAMERA_OBJECTS` or :data:`VALUE`.
        dtype: the tensor dtype (None for :data:`VALUE` keys and strings).
        shape: one sample's shape (of one camera's tensor for :data:`CAMERA_OBJECTS`);
            strings name dimensions that vary.
        class_labels: the values index the config's ``class_names``.
        meaning: one line for people.
    """

    name: str
    group: str
    layout: str
    dtype: Optional[torch.dtype]
    shape: tuple[Dim, ...]
    meaning: str
    class_labels: bool = False

    @property
    def numpy_dtype(self) -> Optional[type]:
        """The numpy dtype the pipeline builds this key's arrays with (None: not an array)."""
        return None if self.dtype is None else torch.empty(0, dtype=self.dtype).numpy().dtype.type

    @property
    def row_shape(self) -> tuple[int, ...]:
        """``shape`` with every named dimension as ``-1`` (what ``reshape`` takes)."""
        return tuple(-1 if isinstance(dim, str) else dim for dim in self.shape)

    @property
    def per_camera(self) -> bool:
        """Whether one sample holds one entry per camera (a leading ``N``, or per-camera lists)."""
        return self.layout == CAMERA_OBJECTS or self.shape[:1] == ("N",)


def _key(name: str, group: str, layout: str, dtype: Optional[torch.dtype], shape: tuple[Dim, ...],
         meaning: str, class_labels: bool = False) -> BatchKey:
    return BatchKey(name, group, layout, dtype, shape, meaning, class_labels)


_F32, _F64, _I64, _BOOL = torch.float32, torch.float64, torch.int64, torch.bool
#: Every key, in the order of docs/data_contract.md.
BATCH_KEYS: tuple[BatchKey, ...] = (
    _key("img", IMAGES, STACKED, _F32, ("N", 3, "H", "W"), "normalised, padded images"),
    _key("lidar2img", GEOMETRY, STACKED, _F32, ("N", 4, 4), "LiDAR -> augmented pixels"),
    _key("intrinsics", GEOMETRY, STACKED, _F32, ("N", 4, 4), "augmented intrinsics"),
    _key("extrinsics", GEOMETRY, STACKED, _F32, ("N", 4, 4), "LiDAR -> camera of the rig"),
    _key("ego_pose", GEOMETRY, STACKED, _F32, (4, 4), "LiDAR -> global"),
    _key("ego_pose_inv", GEOMETRY, STACKED, _F32, (4, 4), "global -> LiDAR"),
    _key("timestamp", GEOMETRY, STACKED, _F64, (), "seconds"),
    _key("prev_exists", GEOMETRY, STACKED, _BOOL, (), "False on a scene segment's first frame"),
    _key("img_shape", META, VALUE, None, (2,), "(H, W) before padding"),
    _key("pad_shape", META, VALUE, None, (2,), "(H, W) after padding"),
    _key("sample_idx", META, VALUE, None, (), "sample token"),
    _key("scene_token", META, VALUE, None, (), "scene token"),
    _key("gt_bboxes_3d", TARGETS_3D, OBJECTS, _F32, ("M", 9), "boxes, box layout, LiDAR frame"),
    _key("gt_labels_3d", TARGETS_3D, OBJECTS, _I64, ("M",), "class indices", class_labels=True),
    _key("gt_bboxes", TARGETS_2D, CAMERA_OBJECTS, _F32, ("Mi", 4), "2D boxes xyxy, augmented image"),
    _key("gt_labels", TARGETS_2D, CAMERA_OBJECTS, _I64, ("Mi",), "2D class indices", class_labels=True),
    _key("centers2d", TARGETS_2D, CAMERA_OBJECTS, _F32, ("Mi", 2), "projected 3D centres, pixels"),
    _key("depths", TARGETS_2D, CAMERA_OBJECTS, _F32, ("Mi",), "camera depth of the 3D centres"),
    _key("depth_maps", TARGETS_DEPTH, STACKED, _F32, ("N", "h", "w"),
         "nearest LiDAR camera depth (m) per stride cell, 0: no point"),
    _key("gt_labelled", LABELLED, STACKED, _BOOL, (), "frame in the labelled subset"),
    _key("pseudo_bboxes_3d", PSEUDO_LABELS, OBJECTS, _F32, ("M", 9), "teacher boxes for the DN queries"),
    _key("pseudo_labels_3d", PSEUDO_LABELS, OBJECTS, _I64, ("M",), "teacher labels", class_labels=True),
    _key("img_timestamp", UPSTREAM_EXTRAS, STACKED, _F64, ("N",), "per-camera seconds"),
    _key("gt_names", UPSTREAM_EXTRAS, OBJECTS, None, ("M",), "class names of the 3D boxes"),
    _key("attr_labels", UPSTREAM_EXTRAS, OBJECTS, _I64, ("M",), "attribute indices"),
)
#: The groups, in declaration order.
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(key.group for key in BATCH_KEYS))
#: Groups a pipeline sample can carry (the distiller adds the pseudo labels to a batch;
#: the upstream extras are kept only when a config collects them; the depth targets only
#: where a training pipeline has ``LoadLidarDepthMaps``).
SAMPLE_GROUPS: tuple[str, ...] = (IMAGES, GEOMETRY, META, TARGETS_3D, TARGETS_2D, TARGETS_DEPTH, LABELLED)
_BY_NAME: dict[str, BatchKey] = {key.name: key for key in BATCH_KEYS}


def spec(name: str) -> BatchKey:
    """The declaration of key ``name``; a KeyError with close matches when it is not declared."""
    if name not in _BY_NAME:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
        raise KeyError(f"{name!r} is not a key of the batch contract (core/batch_contract.py); "
                       f"close matches: {close}")
    return _BY_NAME[name]


def keys(*groups: str) -> tuple[str, ...]:
    """The keys of ``groups``, in declaration order; a ValueError naming an unknown group."""
    unknown = [group for group in groups if group not in GROUPS]
    if unknown:
        raise ValueError(f"unknown batch contract groups {unknown}; the groups are {list(GROUPS)}")
    return tuple(key.name for key in BATCH_KEYS if key.group in groups)


def geometry_keys(with_extrinsics: bool) -> tuple[str, ...]:
    """The :data:`GEOMETRY` keys a 3D head reads, with or without ``extrinsics``."""
    return tuple(name for name in keys(GEOMETRY) if with_extrinsics or name != "extrinsics")


def where(**attributes: Any) -> tuple[str, ...]:
    """The keys whose :class:`BatchKey` attributes equal ``attributes`` (e.g. ``layout=OBJECTS``)."""
    return tuple(key.name for key in BATCH_KEYS
                 if all(getattr(key, attr) == value for attr, value in attributes.items()))


def require(batch: Mapping[str, Any], names: tuple[str, ...], who: str) -> None:
    """Raise a KeyError naming every key of ``names`` that ``batch`` lacks, and ``who`` needs it.

    Args:
        batch: a sample or a batch.
        names: e.g. ``keys(IMAGES, GEOMETRY)``.
        who: the consumer, as errors should name it (``"Petr3D mode='loss'"``).
    """
    missing = [name for name in names if name not in batch]
    if missing:
        raise KeyError(f"{who} needs batch keys {missing} (core/batch_contract.py); "
                       f"got {sorted(batch)}")


def _check_tensor(name: str, value: Any, expected: tuple[Dim, ...], dtype: Optional[torch.dtype]) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"batch[{name!r}] must be a tensor, got {type(value).__name__}")
    shape = tuple(value.shape)
    fits = len(shape) == len(expected) and all(
        isinstance(dim, str) or dim == size for dim, size in zip(expected, shape))
    if not fits or (dtype is not None and value.dtype != dtype):
        raise ValueError(f"batch[{name!r}] must be {dtype} of shape {expected}, got {value.dtype} "
                         f"of shape {shape} (core/batch_contract.py)")


def check_batch(batch: Mapping[str, Any]) -> None:
    """Check the layout, shape and dtype of every declared key of a collated batch.

    ``STACKED`` keys must be tensors ``(B, *shape)``; ``OBJECTS`` keys lists of B tensors
    ``(M_b, ...)``; ``CAMERA_OBJECTS`` keys lists of B lists of tensors ``(M_bn, ...)``;
    ``VALUE`` keys lists of B. Keys the contract does not declare are left alone.

    Raises:
        TypeError / ValueError: naming the key, what it must be and what it is.
    """
    sizes = {len(value) for name, value in batch.items()
             if name in _BY_NAME and _BY_NAME[name].layout != STACKED}
    sizes |= {int(value.shape[0]) for name, value in batch.items()
              if name in _BY_NAME and _BY_NAME[name].layout == STACKED and isinstance(value, torch.Tensor)}
    if len(sizes) > 1:
        raise ValueError(f"the batch keys disagree on the batch size: {sorted(sizes)}")
    for name, value in batch.items():
        if name not in _BY_NAME:
            continue
        key = _BY_NAME[name]
        if key.layout == STACKED:
            _check_tensor(name, value, ("B",) + key.shape, key.dtype)
        elif key.layout == OBJECTS and key.dtype is not None:
            for item in value:
                _check_tensor(name, item, key.shape, key.dtype)
        elif key.layout == CAMERA_OBJECTS:
            for cameras in value:
                for item in cameras:
                    _check_tensor(name, item, key.shape, key.dtype)


def numpy_layouts(*names: str) -> dict[str, tuple[type, tuple[int, ...]]]:
    """``name -> (numpy dtype, reshape shape)`` of array keys, e.g. ``gt_bboxes`` ->
    ``(np.float32, (-1, 4))`` (the shape of one camera's array for per-camera keys)."""
    return {name: (spec(name).numpy_dtype, spec(name).row_shape) for name in names}

