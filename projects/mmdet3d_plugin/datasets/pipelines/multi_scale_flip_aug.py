"""The test-time augmentation wrapper of StreamPETR / RayDN test pipelines."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .compose import Compose, Transform
from ...registry import TRANSFORMS


def _single(value: Any, name: str) -> Any:
    """The one element of ``value`` when it is a list of one, else ``value``; raises for more."""
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"MultiScaleFlipAug3D supports a single {name}, got {value}")
        return value[0]
    return value


@TRANSFORMS.register_module()
class MultiScaleFlipAug3D:
    """Single-scale, no-flip test-time wrapper: runs ``transforms`` once on the sample.

    Upstream configs use it with one scale and ``flip=False``; other settings raise. The
    result is the plain sample dict of the data contract (not wrapped in per-augmentation
    lists as mmdet3d does). ``img_scale`` is accepted and ignored: the image size is set by
    ``ResizeCropFlipRotImage`` earlier in the pipeline, and no wrapped step reads a scale.

    Args:
        transforms: the wrapped steps (config dicts or callables).
        img_scale: one ``(w, h)`` scale, or a list with one.
        pts_scale_ratio: must be 1 (or ``[1]``).
        flip: must be False.
    """

    def __init__(
        self,
        transforms: Sequence[Mapping[str, Any] | Transform],
        img_scale: tuple[int, int] | list[tuple[int, int]],
        pts_scale_ratio: float | list[float] = 1.0,
        flip: bool = False,
    ) -> None:
        self.img_scale = tuple(_single(img_scale, "img_scale"))
        if len(self.img_scale) != 2:
            raise ValueError(f"img_scale must be one (w, h) pair, got {img_scale}")
        if float(_single(pts_scale_ratio, "pts_scale_ratio")) != 1.0:
            raise ValueError(f"MultiScaleFlipAug3D supports only pts_scale_ratio=1, got {pts_scale_ratio}")
        if flip:
            raise ValueError("MultiScaleFlipAug3D supports only flip=False")
        self.transforms = Compose(transforms)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any] | None:
        return self.transforms(results)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(img_scale={self.img_scale}, transforms={self.transforms!r})"
