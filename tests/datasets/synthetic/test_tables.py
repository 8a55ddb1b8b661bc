"""Static nuScenes tables, tokens and table writing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from nuscenes.eval.detection.utils import category_to_detection_name

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.synthetic.tables import (
    TABLE_NAMES, attribute_table, category_table, make_token, sensor_table, visibility_token, write_tables)


def test_tokens_are_deterministic_hex() -> None:
    token = make_token(0, "scene", 3)
    assert token == make_token(0, "scene", 3) != make_token(1, "scene", 3)
    assert len(token) == 32 and int(token, 16) >= 0


def test_categories_map_to_all_detection_classes() -> None:
    names = {category_to_detection_name(c["name"]) for c in category_table()}
    assert names == set(NUSCENES_CLASSES)
    assert len(attribute_table()) == 8 and len(sensor_table()) == 7


@pytest.mark.parametrize(
    "fraction, token", [(0.0, "1"), (0.39, "1"), (0.4, "2"), (0.7, "3"), (0.8, "4"), (1.0, "4")])
def test_visibility_bins(fraction: float, token: str) -> None:
    assert visibility_token(fraction) == token


def test_write_tables(tmp_path: Path) -> None:
    tables = {name: [] for name in TABLE_NAMES}
    tables["sensor"] = sensor_table()
    write_tables(tmp_path / "v1.0-mini", tables)
    assert json.loads((tmp_path / "v1.0-mini" / "sensor.json").read_text()) == tables["sensor"]
    del tables["map"]
    with pytest.raises(ValueError, match="missing \\['map'\\]"):
        write_tables(tmp_path / "other", tables)
