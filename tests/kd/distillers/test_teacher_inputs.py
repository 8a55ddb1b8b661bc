"""The teacher's view of a batch (resized consistently) and pseudo labels from its predictions."""
from __future__ import annotations

import torch

from projects.mmdet3d_plugin.kd.distillers.teacher_inputs import GT_KEYS, teacher_batch


def _project(lidar2img: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Pixel ``(u, v)`` of a LiDAR point ``(3,)`` through a ``(4, 4)`` matrix."""
    hom = lidar2img @ torch.cat([point, torch.ones(1)])
    return hom[:2] / hom[2]


def test_resize_moves_projections_to_the_scaled_pixels(tiny) -> None:
    batch = tiny.batch()
    out = teacher_batch(batch, (128, 264))
    assert out["img"].shape == (2, 2, 3, 128, 264)
    assert out["pad_shape"] == [(128, 264)] * 2 and out["img_shape"] == [(128, 264)] * 2
    point = torch.tensor([15.0, 1.0, 0.0])
    before = _project(batch["lidar2img"][0, 0], point)
    after = _project(out["lidar2img"][0, 0], point)
    torch.testing.assert_close(after, before * torch.tensor([264 / 176, 2.0]))
    k_before, k_after = batch["intrinsics"][0, 0], out["intrinsics"][0, 0]
    torch.testing.assert_close(k_after[0, 0], k_before[0, 0] * 1.5)
    torch.testing.assert_close(k_after[1, 2], k_before[1, 2] * 2.0)
    torch.testing.assert_close(out["extrinsics"], batch["extrinsics"])
    assert not set(GT_KEYS) & set(out)
    assert batch["img"].shape == (2, 2, 3, 64, 176)


def test_same_size_keeps_the_images_and_drops_only_the_ground_truth(tiny) -> None:
    batch = tiny.batch()
    out = teacher_batch(batch, None)
    assert out["img"] is batch["img"] and out["lidar2img"] is batch["lidar2img"]
    assert set(out) == set(batch) - set(GT_KEYS)
