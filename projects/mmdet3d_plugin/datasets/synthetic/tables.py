"""nuScenes table records of the generated world: tokens, static tables, writing.

Field names follow the nuScenes schema (devkit ``nuscenes.py`` and the schema document):
every record has a 32-hex ``token``; links between tables are tokens; an empty string marks
the end of a ``prev``/``next`` chain.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .catalog import ATTRIBUTES, CATEGORY_DESCRIPTIONS, SENSOR_MODALITIES, VISIBILITY_LEVELS, category_names

TABLE_NAMES: tuple[str, ...] = (
    "attribute", "calibrated_sensor", "category", "ego_pose", "instance", "log", "map",
    "sample", "sample_annotation", "sample_data", "scene", "sensor", "visibility",
)


def make_token(*parts: object) -> str:
    """A deterministic 32-hex token from the parts that identify a record."""
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def category_table() -> list[dict]:
    """The ``category`` records of every category the world uses."""
    return [
        {"token": make_token("category", name), "name": name, "description": CATEGORY_DESCRIPTIONS[name]}
        for name in category_names()
    ]


def attribute_table() -> list[dict]:
    """The eight nuScenes ``attribute`` records."""
    return [{"token": make_token("attribute", name), "name": name, "description": desc}
            for name, desc in ATTRIBUTES]


def visibility_table() -> list[dict]:
    """The four nuScenes ``visibility`` records (tokens ``'1'`` ... ``'4'``)."""
    return [{"token": token, "level": level, "description": desc} for token, level, desc in VISIBILITY_LEVELS]


def sensor_table() -> list[dict]:
    """The seven ``sensor`` records (six cameras and LIDAR_TOP)."""
    return [{"token": make_token("sensor", channel), "channel": channel, "modality": modality}
            for channel, modality in SENSOR_MODALITIES]


def visibility_token(fraction: float) -> str:
    """The visibility token of a visible fraction in [0, 1]: '1' (<40%) ... '4' (>=80%)."""
    if fraction < 0.4:
        return "1"
    if fraction < 0.6:
        return "2"
    if fraction < 0.8:
        return "3"
    return "4"


def write_tables(table_dir: Path, tables: dict[str, list[dict]]) -> None:
    """Write every table as ``<table_dir>/<name>.json``.

    Raises:
        ValueError: when a nuScenes table is missing from ``tables``.
    """
    missing = [name for name in TABLE_NAMES if name not in tables]
    if missing:
        raise ValueError(f"cannot write nuScenes tables: missing {missing}")
    table_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLE_NAMES:
        with open(table_dir / f"{name}.json", "w") as f:
            json.dump(tables[name], f, indent=0)
