"""NMSFreeCoder: top-k over queries x classes, denormalisation, range and score filters."""
from __future__ import annotations

import math

import pytest
import torch

from projects.mmdet3d_plugin.core.bbox.coders.nms_free_coder import NMSFreeCoder
from projects.mmdet3d_plugin.core.bbox.util import normalize_bbox
from projects.mmdet3d_plugin.registry import TASK_UTILS

PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _preds():
    """One sample, 3 queries, 2 classes; query 1 lies outside the post-centre range."""
    probs = torch.tensor([[0.9, 0.2], [0.8, 0.1], [0.3, 0.7]])
    boxes = torch.tensor(
        [
            [1.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.1, 1.0, 0.0],
            [80.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
            [-5.0, 3.0, -1.0, 0.5, 0.6, 1.7, -2.0, 0.0, 0.5],
        ]
    )
    logits = probs.log() - (1 - probs).log()
    # two decoder layers; the first one is garbage and must be ignored
    all_cls = torch.stack([torch.zeros(1, 3, 2), logits[None]])
    all_codes = torch.stack([torch.zeros(1, 3, 10), normalize_bbox(boxes)[None]])
    return dict(all_cls_scores=all_cls, all_bbox_preds=all_codes), boxes


def test_build_from_config():
    coder = TASK_UTILS.build(
        dict(type="NMSFreeCoder", pc_range=PC_RANGE, post_center_range=[-61.2] * 3 + [61.2] * 3,
             max_num=300, voxel_size=[0.2, 0.2, 8], num_classes=10)
    )
    assert isinstance(coder, NMSFreeCoder) and coder.max_num == 300


def test_topk_denormalise_and_range_filter():
    preds, boxes = _preds()
    coder = NMSFreeCoder(PC_RANGE, post_center_range=[-61.2, -61.2, -10, 61.2, 61.2, 10],
                         max_num=4, num_classes=2)
    (result,) = coder.decode(preds)
    # top-4 pairs: (q0,c0) .9, (q1,c0) .8, (q2,c1) .7, (q2,c0) .3; q1 is out of range
    assert result["scores"].tolist() == pytest.approx([0.9, 0.7, 0.3])
    assert result["labels"].tolist() == [0, 1, 0]
    assert result["bboxes"].shape == (3, 9)
    assert torch.allclose(result["bboxes"][0], boxes[0], atol=1e-5)
    assert torch.allclose(result["bboxes"][1], boxes[2], atol=1e-5)
    assert torch.allclose(result["bboxes"][2], boxes[2], atol=1e-5)


def test_score_threshold_and_no_range():
    preds, _ = _preds()
    coder = NMSFreeCoder(PC_RANGE, max_num=100, score_threshold=0.5, num_classes=2)
    (result,) = coder.decode(preds)
    assert result["scores"].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert result["labels"].dtype == torch.int64


def test_batch_of_two():
    preds, _ = _preds()
    preds = {key: value.repeat(1, 2, 1, 1) for key, value in preds.items()}
    results = NMSFreeCoder(PC_RANGE, max_num=2, num_classes=2).decode(preds)
    assert len(results) == 2
    assert all(r["scores"].tolist() == pytest.approx([0.9, 0.8]) for r in results)


def test_class_count_mismatch_raises():
    preds, _ = _preds()
    with pytest.raises(ValueError, match="num_classes"):
        NMSFreeCoder(PC_RANGE, num_classes=10).decode(preds)
