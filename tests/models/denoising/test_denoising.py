"""StreamPETR denoising queries and their group-isolating self-attention mask."""
from __future__ import annotations

import torch

from projects.mmdet3d_plugin.models.denoising.denoising import build_dn_queries, dn_self_attention_mask

PC_RANGE = torch.tensor([-50.0, -50.0, -5.0, 50.0, 50.0, 3.0])


def _gt() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    boxes = [torch.tensor([[10.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0],
                           [-20.0, 5.0, -1.0, 1.0, 1.0, 2.0, 0.5, 1.0, 0.0],
                           [0.0, 30.0, 1.0, 10.0, 3.0, 3.0, 1.0, 0.0, 0.0]]),
             torch.tensor([[5.0, 5.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0]])]
    return boxes, [torch.tensor([0, 3, 8]), torch.tensor([5])]


def test_queries_layout_targets_and_padding() -> None:
    boxes, labels = _gt()
    dn = build_dn_queries(boxes, labels, PC_RANGE, num_classes=10, num_groups=2,
                          noise_scale=0.0, split=2.0)
    assert (dn.group_size, dn.pad_size, dn.num_targets) == (3, 6, 8)
    assert dn.reference_points.shape == (2, 6, 3)
    assert dn.labels.tolist() == [0, 3, 8, 5, 0, 3, 8, 5]  # split > sqrt(3): nothing is background
    assert dn.batch_index.tolist() == [0, 0, 0, 1, 0, 0, 0, 1]
    assert dn.query_index.tolist() == [0, 1, 2, 0, 3, 4, 5, 3]
    expected = (boxes[0][:, :3] - PC_RANGE[:3]) / (PC_RANGE[3:] - PC_RANGE[:3])
    assert torch.allclose(dn.reference_points[0, :3], expected)  # no noise: exact centres
    assert torch.allclose(dn.reference_points[0, 3:], expected)
    assert torch.equal(dn.reference_points[1, 1:3], torch.zeros(2, 3))  # padding of sample 1


def test_noise_is_bounded_by_half_size_and_far_copies_are_background() -> None:
    torch.manual_seed(0)
    boxes, labels = _gt()
    dn = build_dn_queries(boxes, labels, PC_RANGE, 10, num_groups=50, noise_scale=1.0, split=0.75)
    span = PC_RANGE[3:] - PC_RANGE[:3]
    centers = dn.reference_points[dn.batch_index, dn.query_index] * span + PC_RANGE[:3]
    offset = (centers - dn.bboxes[:, :3]).abs()
    assert (offset <= dn.bboxes[:, 3:6] / 2 + 1e-4).all()
    unit = offset / (dn.bboxes[:, 3:6] / 2)
    far = unit.norm(dim=1) > 0.75
    assert far.any() and (~far).any()
    assert (dn.labels[far] == 10).all() and (dn.labels[~far] != 10).all()
    all_bg = build_dn_queries(boxes, labels, PC_RANGE, 10, num_groups=3, noise_scale=1.0, split=0.0)
    assert (all_bg.labels == 10).all()


def test_no_gt_gives_no_queries() -> None:
    empty = [torch.zeros(0, 9), torch.zeros(0, 9)]
    assert build_dn_queries(empty, [torch.zeros(0, dtype=torch.long)] * 2, PC_RANGE, 10, 5, 1.0) is None


def test_mask_isolates_groups_and_hides_them_from_other_queries() -> None:
    groups, size, queries, keys = 3, 2, 4, 7
    mask = dn_self_attention_mask(groups, size, queries, keys, torch.device("cpu"))
    pad = groups * size
    assert mask.shape == (pad + queries, pad + keys) and mask.dtype == torch.bool
    for row in range(pad):
        for col in range(pad):
            assert bool(mask[row, col]) == (row // size != col // size)
    assert mask[pad:, :pad].all()  # matching / propagated queries never see DN queries
    assert not mask[:, pad:].any()  # everyone sees the non-DN queries and the memory
