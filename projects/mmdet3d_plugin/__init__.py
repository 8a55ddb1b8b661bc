"""HarmoDistill: StreamPETR / RayDN detectors and their distillation in pure PyTorch.

Importing the package imports every module below it once, so that each class registers
itself in :mod:`projects.mmdet3d_plugin.registry` and ``type='...'`` names in configs resolve.
"""
from __future__ import annotations

import importlib
import pkgutil


def _import_all_modules() -> None:
    """Import every submodule of this package (registration happens at import)."""
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)


_import_all_modules()
