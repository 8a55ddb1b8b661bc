"""The generated nuScenes world's val split as a dataset (raw images, annotations)."""
from __future__ import annotations

import pytest

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.datasets.nuscenes_dataset import CustomNuScenesDataset


@pytest.fixture(scope="module")
def val_dataset(synthetic_world, synthetic_infos) -> CustomNuScenesDataset:
    return CustomNuScenesDataset(ann_file=synthetic_infos["val"], data_root=str(synthetic_world),
                                 classes=NUSCENES_CLASSES)
