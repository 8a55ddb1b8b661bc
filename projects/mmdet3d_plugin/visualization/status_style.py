"""How a box shows whether it is right: one colour per outcome, the same in every panel.

* colour = outcome: **green** a true positive (a prediction matched to ground truth of its
  class within 2 m) and the ground truth it matched, **magenta** a false positive, **cyan**
  missed ground truth;
* line = source: **solid** a prediction, **dashed** ground truth;
* every line has a thin black outline, so it reads on sky, road and objects alike.

The colours are chosen away from the generated world's (blue sky, grey road with white lane
marks, objects in blue, orange, yellow, red, lilac, purple, green, skin and white accents;
``datasets/synthetic/catalog.py``): neon green is far brighter than the bicycles' green, and
nothing in the world is magenta or cyan. The ego in BEV is white for the same reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TP_COLOR = "#66ff00"  # neon green
FP_COLOR = "#ff00ff"  # magenta
MISSED_COLOR = "#00ffff"  # cyan
OUTLINE_COLOR = "black"
GT_DASHES = (0, (4, 2))

#: Short class names for the box labels (other names are used as they are).
SHORT_NAMES = {"construction_vehicle": "constr", "motorcycle": "moto", "bicycle": "bike",
               "pedestrian": "ped", "traffic_cone": "cone"}


@dataclass(frozen=True)
class LineStyle:
    """Colour, width and dashes of one kind of box line."""

    color: str
    linewidth: float
    linestyle: Any = "solid"

    def collection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a ``LineCollection`` (with the black outline)."""
        return dict(colors=[self.color], linewidths=self.linewidth, linestyles=[self.linestyle],
                    path_effects=outline(self.linewidth))


TRUE_POSITIVE = LineStyle(TP_COLOR, 2.0)
MATCHED_GT = LineStyle(TP_COLOR, 1.1, GT_DASHES)
FALSE_POSITIVE = LineStyle(FP_COLOR, 1.6)
MISSED_GT = LineStyle(MISSED_COLOR, 2.2, GT_DASHES)


def outline(linewidth: float) -> list:
    """Path effects drawing a black line under one of ``linewidth``."""
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=linewidth + 1.6, foreground=OUTLINE_COLOR), patheffects.Normal()]


def short_name(name: str) -> str:
    """The label text of a class name."""
    return SHORT_NAMES.get(name, name)


def legend_handles(distance_m: float) -> list:
    """Legend entries of the four line kinds (matplotlib ``Line2D``)."""
    from matplotlib.lines import Line2D

    def entry(style: LineStyle, label: str, **extra: Any) -> Line2D:
        return Line2D([], [], color=style.color, linewidth=style.linewidth + 0.6, linestyle=style.linestyle,
                      path_effects=outline(style.linewidth + 0.6), label=label, **extra)

    return [entry(TRUE_POSITIVE, f"true positive: prediction matched (same class, centre within {distance_m:g} m)"),
            entry(MATCHED_GT, "ground truth it matched"),
            entry(FALSE_POSITIVE, "false positive (x: its centre in BEV)", marker="x", markersize=6),
            entry(MISSED_GT, "missed ground truth"),
            Line2D([], [], color="none", label="solid: prediction, dashed: ground truth; label: class score")]

