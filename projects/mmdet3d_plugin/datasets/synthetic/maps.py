"""Map masks of the generated world (``maps/<token>.png``, one per location).

The devkit's ``MapMask`` reads a binary semantic prior at 0.1 m per pixel whose pixel
``(0, H)`` is the global origin; foreground (255) is drivable surface and pavement. The
generated mask covers every ego trajectory of the location (which start at least 80 m
from the global axes) and marks a 34 m wide corridor along each of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .tables import make_token

MAP_RESOLUTION = 0.1
_CORRIDOR_WIDTH = 34.0
_MARGIN = 60.0


def map_mask(trajectories: list[np.ndarray]) -> Image.Image:
    """Draw the semantic prior of one location.

    Args:
        trajectories: ego positions ``(T, 2)`` of every scene of the location (global, >= 0).

    Returns:
        Mode ``"L"`` image, 255 on the road corridors, 0 elsewhere.
    """
    extent = np.max([traj.max(axis=0) for traj in trajectories], axis=0) + _MARGIN
    width, height = (int(np.ceil(v / MAP_RESOLUTION)) for v in extent)
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    line_width = int(round(_CORRIDOR_WIDTH / MAP_RESOLUTION))
    for traj in trajectories:
        pixels = [(float(x / MAP_RESOLUTION), float(height - y / MAP_RESOLUTION)) for x, y in traj]
        if len(pixels) == 1:
            pixels = pixels * 2
        draw.line(pixels, fill=255, width=line_width, joint="curve")
        for x, y in (pixels[0], pixels[-1]):
            r = line_width / 2.0
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return image


def write_maps(root: Path, seed: int, logs: dict[str, list[tuple[str, np.ndarray]]]) -> list[dict]:
    """Write one map png per location and return the ``map`` table.

    Args:
        root: data root being written (``maps/`` is created).
        seed: world seed (part of the map tokens).
        logs: per location, the ``(log_token, ego_xy (T, 2))`` of its scenes.

    Returns:
        ``map`` records: token, log_tokens, category, filename.
    """
    (root / "maps").mkdir(parents=True, exist_ok=True)
    records = []
    for location in sorted(logs):
        token = make_token(seed, "map", location)
        filename = f"maps/{token}.png"
        map_mask([xy for _, xy in logs[location]]).save(root / filename)
        records.append({"token": token, "log_tokens": [log for log, _ in logs[location]],
                        "category": "semantic_prior", "filename": filename})
    return records
