"""The registries of HarmoDistill.

Every buildable object is registered under its class name and built from a config dict
whose ``type`` names it, exactly as in StreamPETR / RayDN configs::

    model = MODELS.build(cfg.model)

``MODELS`` holds detectors, backbones, necks, heads, transformer parts, losses, the
distiller and its losses; ``TASK_UTILS`` holds assigners, box coders and match costs;
``DATASETS`` the datasets, ``TRANSFORMS`` the pipeline steps and ``DATA_SAMPLERS`` the
samplers.
"""
from __future__ import annotations

from mmengine.registry import Registry

MODELS = Registry("model", scope="harmodistill")
TASK_UTILS = Registry("task util", scope="harmodistill")
DATASETS = Registry("dataset", scope="harmodistill")
TRANSFORMS = Registry("transform", scope="harmodistill")
DATA_SAMPLERS = Registry("data sampler", scope="harmodistill")

__all__ = ["MODELS", "TASK_UTILS", "DATASETS", "TRANSFORMS", "DATA_SAMPLERS"]
