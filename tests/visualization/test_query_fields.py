"""Teacher / student query receptive fields: recorded from a predict call, drawn side by side."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from projects.mmdet3d_plugin.visualization import query_fields
from projects.mmdet3d_plugin.visualization.query_fields import record_query_field, render_query_fields
from tests.fixtures.batches import stream_frame
from tests.fixtures.tiny_models import build_tiny, export_raydn, export_streampetr


@pytest.fixture(scope="module")
def fields():
    frame = stream_frame(0)
    raydn = build_tiny(export_raydn())
    petr = build_tiny(export_streampetr())
    return record_query_field(raydn, frame), record_query_field(petr, frame), raydn


def test_raydn_field_is_its_dfa_key_points(fields):
    (preds, field), _, raydn = fields
    queries = raydn.pts_bbox_head.num_query + raydn.pts_bbox_head.num_propagated
    assert field.source == "dfa_key_points"
    assert field.points.shape == (queries * 13, 3) and field.values.shape == (queries * 13,)
    assert ((field.values >= 0) & (field.values <= 1)).all()
    assert preds[0]["boxes_3d"].shape[1] == 9
    assert not raydn.pts_bbox_head._forward_hooks  # hooks removed
    assert not any("key_points" in vars(module) for module in raydn.modules())  # method taps removed


def test_streampetr_field_falls_back_to_reference_points(fields):
    _, (_, field), _ = fields
    assert field.source == "reference_points" and field.points.shape == (20, 3)
    assert (abs(field.points[:, :2]) <= 51.2 + 1e-4).all()


@pytest.mark.parametrize("with_splat", [True, False])
def test_side_by_side_png(fields, tmp_path, monkeypatch, with_splat):
    (_, student), (_, teacher), _ = fields
    if not with_splat:
        monkeypatch.setattr(query_fields, "bev_splatter", lambda: None)
    path = render_query_fields(teacher, student, tmp_path / "q.png", [-51.2, -51.2, -5, 51.2, 51.2, 3],
                               title="tok", dpi=50)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (550, 290)


def test_splat_is_the_distillation_loss_one():
    splat = query_fields.bev_splatter()
    assert splat is not None
    grid = splat(torch.tensor([[[0.0, 0.0, 0.0]]]), torch.ones(1, 1), [-51.2, -51.2, -5, 51.2, 51.2, 3], (8, 8))
    assert torch.isclose(grid.sum(), torch.tensor(1.0))
