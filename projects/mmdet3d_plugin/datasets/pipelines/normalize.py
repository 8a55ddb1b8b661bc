"""Per-channel normalisation of the camera images."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class NormalizeMultiviewImage:
    """``(img - mean) / std`` per channel on each of the N images.

    With ``to_rgb=True`` the channels (loaded BGR) are first reversed to RGB, so ``mean`` and
    ``std`` are given in RGB order, as in every StreamPETR / RayDN ``img_norm_cfg``. Adds
    ``img_norm_cfg``.

    Args:
        mean: 3 channel means.
        std: 3 channel standard deviations (non-zero).
        to_rgb: reverse the channel order before normalising.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True) -> None:
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != (3,) or self.std.shape != (3,) or (self.std == 0).any():
            raise ValueError(f"mean and std need 3 values (std non-zero), got {mean}, {std}")
        self.to_rgb = to_rgb

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        inv_std = 1.0 / self.std
        normed = []
        for img in results["img"]:
            img = np.asarray(img, dtype=np.float32)
            if self.to_rgb:
                img = img[..., ::-1]
            normed.append((img - self.mean) * inv_std)
        results["img"] = normed
        results["img_norm_cfg"] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()}, "
            f"to_rgb={self.to_rgb})"
        )
