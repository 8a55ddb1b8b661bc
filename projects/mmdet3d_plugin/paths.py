"""Where the repository is: the one place that knows how deep this file sits in the checkout.

Library code that reads a file shipped with the repository (a config, the model-zoo
manifest) resolves it against :data:`REPO_ROOT` rather than counting ``parents[...]`` itself.
"""
from __future__ import annotations

from pathlib import Path

#: The repository root, the directory holding ``pyproject.toml``
#: (``projects/mmdet3d_plugin/paths.py`` -> 2 levels up).
REPO_ROOT = Path(__file__).resolve().parents[2]
