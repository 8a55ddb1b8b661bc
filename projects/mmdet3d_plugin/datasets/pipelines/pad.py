"""Bottom/right padding of the camera images to a fixed size or a size multiple."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...registry import TRANSFORMS


def pad_image(img: np.ndarray, size_hw: tuple[int, int], pad_val: float) -> np.ndarray:
    """Pad ``(H, W, C)`` at the bottom and right to ``size_hw``; raises if it is smaller."""
    height, width = img.shape[:2]
    if size_hw[0] < height or size_hw[1] < width:
        raise ValueError(f"cannot pad an image of {(height, width)} to the smaller {size_hw}")
    if (height, width) == tuple(size_hw):
        return img
    out = np.full((size_hw[0], size_hw[1]) + img.shape[2:], pad_val, dtype=img.dtype)
    out[:height, :width] = img
    return out


@TRANSFORMS.register_module()
class PadMultiViewImage:
    """Pad all N images to ``size`` or to the next multiple of ``size_divisor``.

    Sets ``pad_shape`` ``(H, W)`` (``img_shape``, the size before padding, is kept).

    Args:
        size: fixed ``(H, W)`` to pad to; exactly one of ``size`` / ``size_divisor``.
        size_divisor: pad height and width up to a multiple of it.
        pad_val: value of the padded pixels.
    """

    def __init__(
        self,
        size: Sequence[int] | None = None,
        size_divisor: int | None = None,
        pad_val: float = 0,
    ) -> None:
        if (size is None) == (size_divisor is None):
            raise ValueError("PadMultiViewImage needs exactly one of size and size_divisor")
        if size_divisor is not None and size_divisor < 1:
            raise ValueError(f"size_divisor must be >= 1, got {size_divisor}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.size_divisor = size_divisor
        self.pad_val = pad_val

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        shapes = {img.shape[:2] for img in results["img"]}
        if len(shapes) != 1:
            raise ValueError(f"all camera images must have one size before padding, got {shapes}")
        height, width = shapes.pop()
        if self.size is not None:
            target = self.size
        else:
            div = self.size_divisor
            target = (-(-height // div) * div, -(-width // div) * div)
        results["img"] = [pad_image(img, target, self.pad_val) for img in results["img"]]
        results["img_shape"] = (int(height), int(width))
        results["pad_shape"] = (int(target[0]), int(target[1]))
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, size_divisor={self.size_divisor}, "
            f"pad_val={self.pad_val})"
        )
