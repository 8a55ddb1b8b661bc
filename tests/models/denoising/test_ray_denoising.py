"""Ray denoising: steps, shifts along camera rays, the query layout and its attention mask."""
from __future__ import annotations

import math

import torch
from torch.distributions import Beta

from projects.mmdet3d_plugin.models.denoising.ray_denoising import (
    RayDenoising,
    dn_attention_mask,
    ray_steps,
    shift_along_camera_rays,
)
from tests.fixtures.batches import cameras

PC_RANGE = torch.tensor([-51.2, -51.2, -5.0, 51.2, 51.2, 3.0])
PAD_SHAPE = (64, 176)


def _lidar2img(batch: int = 2) -> torch.Tensor:
    """(B, 3, 4, 4): front, front-left (overlapping the front) and back pinhole cameras (f = 80 px)
    at (0.5, 0, 1.5)."""
    lidar2img, _, _ = cameras([0.0, 0.6, math.pi], PAD_SHAPE, position=(0.5, 0.0, 1.5))
    return lidar2img.unsqueeze(0).repeat(batch, 1, 1, 1)


def test_ray_steps_one_positive_of_smallest_magnitude():
    torch.manual_seed(0)
    steps, positive = ray_steps(200, 5, Beta(8.0, 2.0), 3.0, 0.75, torch.device("cpu"))
    assert steps.shape == positive.shape == (5, 200)
    assert (positive.sum(0) == 1).all()
    assert (steps.abs() <= 3.0).all()
    pos_steps = steps[positive]
    assert (pos_steps.abs() <= 0.75).all()
    assert torch.equal(steps.abs().argmin(0), positive.float().argmax(0))


def test_shift_lies_on_camera_ray_and_changes_depth():
    lidar2img = _lidar2img(1)
    centres = torch.tensor([[20.0, 1.0, 0.5], [15.0, -2.0, 1.0], [-20.0, 0.5, 0.0], [0.0, 40.0, 0.0]])
    shift = torch.tensor([2.0, -1.5, 3.0, 1.0])
    out = shift_along_camera_rays(centres, torch.zeros(4, dtype=torch.long), shift, lidar2img, PAD_SHAPE)
    # Point 0 and 1 are seen by the front camera (and the last camera that sees point 0 is
    # the front-left one if it does); point 2 only by the back camera; point 3 by none.
    for i, _ in enumerate(centres[:3]):
        homo = torch.cat([centres[i], torch.ones(1)])
        cams = lidar2img[0] @ homo
        uv = cams[:, :2] / cams[:, 2:3]
        visible = (cams[:, 2] > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < PAD_SHAPE[1]) & (uv[:, 1] >= 0) & (uv[:, 1] < PAD_SHAPE[0])
        cam_id = int(torch.nonzero(visible).max())
        origin = torch.linalg.inv(lidar2img[0, cam_id]) @ torch.tensor([0.0, 0.0, 0.0, 1.0])
        ray, moved = centres[i] - origin[:3], out[i] - origin[:3]
        assert torch.linalg.cross(ray, moved).norm() < 1e-3 * ray.norm() * moved.norm()
        new_depth = (lidar2img[0, cam_id] @ torch.cat([out[i], torch.ones(1)]))[2]
        assert torch.isclose(new_depth, cams[cam_id, 2] + shift[i], atol=1e-3)
    assert torch.equal(out[3], centres[3])


def test_dn_attention_mask_layout():
    mask = dn_attention_mask(single_pad=2, scalar=2, raydn_group=1, raydn_num=3,
                             num_query=4, num_propagated=2, memory_len=5, device=torch.device("cpu"))
    pad = 2 * (2 + 3)
    assert mask.shape == (pad + 4 + 2, pad + 4 + 5)
    assert mask[pad:, :pad].all(), "matching / propagated queries must not see denoising ones"
    assert not mask[:, pad:].any(), "everyone sees matching, propagated and memory queries"
    assert not mask[0:2, 0:2].any() and mask[0:2, 2:pad].all()
    assert mask[2:4, 0:2].all() and not mask[2:4, 2:4].any() and mask[2:4, 4:pad].all()
    assert not mask[4:pad, 4:pad].any(), "the copies of one ray group see each other"
    assert mask[4:pad, :4].all()


def _dn(scalar: int = 3) -> RayDenoising:
    return RayDenoising(num_classes=10, scalar=scalar, noise_scale=1.0, noise_trans=0.0, split=0.75,
                        raydn_group=1, raydn_num=5, raydn_alpha=8, raydn_beta=2, raydn_radius=3)


def test_ray_denoising_queries():
    torch.manual_seed(0)
    gt = [torch.tensor([[20.0, 1.0, 0.5, 4.0, 2.0, 1.5, 0.3, 1.0, 0.0],
                        [15.0, -2.0, 1.0, 1.0, 1.0, 1.8, 0.0, 0.0, 0.0]]),
          torch.tensor([[-20.0, 0.5, 0.0, 4.5, 2.0, 1.6, 1.0, 0.0, 0.0]])]
    labels = [torch.tensor([0, 8]), torch.tensor([3])]
    lidar2img = _lidar2img(2)
    out = _dn()(gt, labels, PC_RANGE, lidar2img, PAD_SHAPE)
    groups, total = 3 + 5, 3
    assert out.num_groups == groups and out.group_size == 2 and out.pad_size == 16
    assert out.reference_points.shape == (2, 16, 3)
    assert out.reference_points.min() >= 0 and out.reference_points.max() <= 1
    assert out.labels.shape == (groups * total,) and out.bboxes.shape == (groups * total, 9)
    # Box groups: slot = local index + group * group_size, in the sample of each GT.
    assert out.query_index[:total].tolist() == [0, 1, 0] and out.batch_index[:total].tolist() == [0, 0, 1]
    ray_labels = out.labels[3 * total:].view(5, total)
    assert ((ray_labels != 10).sum(0) == 1).all(), "exactly one positive copy per GT"
    assert sorted(ray_labels[ray_labels != 10].tolist()) == [0, 3, 8]
    # Every ray copy lies on the ray from a camera centre through its GT centre.
    refs = out.reference_points[out.batch_index, out.query_index][3 * total:]
    metric = refs * (PC_RANGE[3:] - PC_RANGE[:3]) + PC_RANGE[:3]
    centres = out.bboxes[3 * total:, :3]
    origins = torch.linalg.inv(lidar2img[0]) @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    for point, centre in zip(metric, centres):
        ray_ok = [torch.linalg.cross(centre - o[:3], point - o[:3]).norm()
                  <= 1e-3 * (centre - o[:3]).norm() * (point - o[:3]).norm() + 1e-4 for o in origins]
        assert any(ray_ok)
    assert not torch.allclose(metric, centres)
    mask = _dn().attention_mask(out, num_query=6, num_propagated=4, memory_len=8)
    assert mask.shape == (16 + 6 + 4, 16 + 6 + 8)
    assert not mask[6:16, 6:16].any() and mask[6:16, :6].all()


def test_ray_groups_only():
    torch.manual_seed(1)
    out = _dn(scalar=0)([torch.tensor([[20.0, 1.0, 0.5, 4.0, 2.0, 1.5, 0.3, 1.0, 0.0]])],
                        [torch.tensor([2])], PC_RANGE, _lidar2img(1), PAD_SHAPE)
    assert out.num_groups == 5 and int((out.labels != 10).sum()) == 1


def test_no_gt_gives_no_denoising():
    out = _dn()([torch.zeros(0, 9)], [torch.zeros(0, dtype=torch.long)], PC_RANGE, _lidar2img(1), PAD_SHAPE)
    assert out is None
