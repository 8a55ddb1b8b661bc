"""Generate a complete nuScenes-format world: tables, images, LiDAR sweeps and maps.

The result loads with ``nuscenes.NuScenes(version, dataroot)`` unchanged and evaluates
with the devkit's ``DetectionEval`` on its own split names: scene names come from
``nuscenes.utils.splits.create_splits_scenes()`` (``mini_train``/``mini_val`` for
``v1.0-mini``, ``train``/``val`` for ``v1.0-trainval``). See ``docs/synthetic_world.md``.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ...core.bbox.box_layout import CAMERA_NAMES
from .background import ground_tiles
from .maps import write_maps
from .scene_writer import SceneResult, generate_scene
from .tables import (TABLE_NAMES, attribute_table, category_table, sensor_table, visibility_table,
                     write_tables)

SPLITS_BY_VERSION: dict[str, tuple[str, str]] = {
    "v1.0-mini": ("mini_train", "mini_val"),
    "v1.0-trainval": ("train", "val"),
}
GENERATED_ENTRIES = ("samples", "maps")


def scene_names(version: str, train_scenes: int, val_scenes: int) -> tuple[list[str], list[str]]:
    """The first ``train_scenes`` / ``val_scenes`` names of the devkit's splits of ``version``.

    Raises:
        ValueError: unknown version, or more scenes requested than the split lists hold.
    """
    from nuscenes.utils.splits import create_splits_scenes

    if version not in SPLITS_BY_VERSION:
        raise ValueError(f"version must be one of {sorted(SPLITS_BY_VERSION)}, got {version!r}")
    splits = create_splits_scenes(verbose=False)
    names = []
    for split, count in zip(SPLITS_BY_VERSION[version], (train_scenes, val_scenes)):
        available = splits[split]
        if count > len(available):
            hint = " (use version 'v1.0-trainval' for more scenes)" if version == "v1.0-mini" else ""
            raise ValueError(f"{version} split {split!r} has {len(available)} scene names, "
                             f"{count} requested{hint}")
        names.append(list(available[:count]))
    return names[0], names[1]


def _check_positive(**values: int) -> None:
    """Raise ValueError naming every argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_target(out_dir: Path, version: str) -> None:
    """Refuse an output path that is a file or holds another nuScenes version."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output path {out_dir} exists and is not a directory")
    if not out_dir.exists():
        return
    others = sorted(p.name for p in out_dir.iterdir() if p.name.startswith("v1.0-") and p.name != version)
    if others:
        raise ValueError(f"output directory {out_dir} already holds nuScenes version(s) {others}; "
                         f"choose an empty directory to generate {version!r}")
    stale = [name for name in GENERATED_ENTRIES if (out_dir / name).exists()]
    if stale and not (out_dir / version).is_dir():
        raise ValueError(f"output directory {out_dir} holds {stale} but no {version}/ tables; "
                         f"choose an empty directory")


def _move_into_place(staging: Path, out_dir: Path, version: str) -> None:
    """Rename the staged world into ``out_dir``, replacing a previous world of the same version."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
        return
    for name in (*GENERATED_ENTRIES, version):
        if (out_dir / name).exists():
            (out_dir / name).rename(staging / f"{name}.old")
        (staging / name).rename(out_dir / name)
    shutil.rmtree(staging)


def _merge(results: list[SceneResult]) -> dict[str, list[dict]]:
    """Concatenate the scene tables (in scene order) and add the static ones."""
    tables: dict[str, list[dict]] = {name: [] for name in TABLE_NAMES}
    for result in results:
        for name, records in result.tables.items():
            tables[name].extend(records)
    tables.update(attribute=attribute_table(), category=category_table(),
                  sensor=sensor_table(), visibility=visibility_table())
    return tables


def _build(staging: Path, version: str, names: list[str], samples_per_scene: int,
           image_size: tuple[int, int], seed: int, progress: Callable[[str], None] | None) -> None:
    """Generate every scene, the maps and the tables under ``staging``."""
    for channel in (*CAMERA_NAMES, "LIDAR_TOP"):
        (staging / "samples" / channel).mkdir(parents=True)
    results, tiles = [], ground_tiles()
    for index, name in enumerate(names):
        results.append(generate_scene(index, name, seed, samples_per_scene, image_size, staging, tiles))
        if progress is not None:
            progress(name)
    tables = _merge(results)
    logs: dict[str, list] = {}
    for result in results:
        logs.setdefault(result.location, []).append((result.log_token, result.ego_xy))
    tables["map"] = write_maps(staging, seed, logs)
    write_tables(staging / version, tables)


def generate_world(
    out_dir: str | Path,
    version: str = "v1.0-mini",
    train_scenes: int = 8,
    val_scenes: int = 2,
    samples_per_scene: int = 40,
    image_size: tuple[int, int] = (800, 450),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Generate a nuScenes-format world under ``out_dir`` and return the data root.

    Args:
        out_dir: the data root to create (missing or empty, or holding an older world of the
            same version, whose ``<version>/``, ``samples/`` and ``maps/`` are replaced).
        version: ``"v1.0-mini"`` (at most 8 + 2 scenes) or ``"v1.0-trainval"`` (700 + 150).
        train_scenes: scenes named from the devkit's train split of ``version``.
        val_scenes: scenes named from the devkit's val split of ``version``.
        samples_per_scene: keyframes per scene (2 Hz).
        image_size: ``(width, height)`` of the camera images.
        seed: world seed; the same arguments give the same bytes.
        progress: called with each scene's name after it is written.

    Returns:
        ``out_dir`` as a Path, holding ``<version>/*.json``, ``samples/`` and ``maps/``.

    Raises:
        ValueError: bad counts or sizes, unknown version, too many scenes, or an output
            directory that holds something else.
    """
    _check_positive(train_scenes=train_scenes, val_scenes=val_scenes, samples_per_scene=samples_per_scene)
    if len(tuple(image_size)) != 2:
        raise ValueError(f"image_size must be (width, height), got {image_size!r}")
    _check_positive(image_width=image_size[0], image_height=image_size[1])
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    train, val = scene_names(version, train_scenes, val_scenes)
    out_dir = Path(out_dir).absolute()
    _check_target(out_dir, version)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    try:
        if staging.exists():
            shutil.rmtree(staging)
        _build(staging, version, train + val, samples_per_scene, tuple(image_size), seed, progress)
        _move_into_place(staging, out_dir, version)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir

