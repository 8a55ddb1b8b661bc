"""MODELS / TASK_UTILS build through checked_build: typos name the config path, the class and
close matches before any constructor runs."""
from __future__ import annotations

from pathlib import Path

import pytest

import projects.mmdet3d_plugin  # noqa: F401  (registers every module)
from projects.mmdet3d_plugin.engine.runner import build_model, load_config
from projects.mmdet3d_plugin.registry import MODELS

try:  # absent before checked_build existed: these tests then fail on their messages
    from projects.mmdet3d_plugin.registry import ConfigArgumentError, UnknownTypeError
except ImportError:
    ConfigArgumentError, UnknownTypeError = TypeError, KeyError

TINY_CONFIG = Path(__file__).resolve().parent / "engine" / "configs" / "tiny_raydn.py"


def _build(**options):
    build_model(load_config(TINY_CONFIG, options), init_weights=False)


def test_constructor_argument_typo_names_path_class_and_close_match():
    with pytest.raises(TypeError) as info:
        _build(**{"model.pts_bbox_head.num_querry": 10})
    message = str(info.value)
    assert "'model.pts_bbox_head'" in message and "RayDNHead" in message
    assert "'num_querry'" in message and "num_query" in message


def test_type_typo_names_path_and_registered_close_match():
    with pytest.raises(KeyError) as info:
        _build(**{"model.pts_bbox_head.type": "RayDNHaed"})
    message = str(info.value)
    assert "'model.pts_bbox_head'" in message and "RayDNHaed" in message and "RayDNHead" in message


def test_typo_deep_inside_a_list_of_configs_names_its_index():
    option = "model.pts_bbox_head.transformer.decoder.transformerlayers.attn_cfgs.1.num_pt"
    with pytest.raises(ConfigArgumentError,
                       match=r"transformerlayers\.attn_cfgs\[1\]'.*'num_pt'.*num_pts"):
        _build(**{option: 13})


def test_task_util_typo_inside_a_head():
    with pytest.raises(ConfigArgumentError, match=r"model\.pts_bbox_head\.bbox_coder'.*NMSFreeCoder.*max_num"):
        _build(**{"model.pts_bbox_head.bbox_coder.max_nums": 300})


def test_root_type_typo_and_missing_argument():
    with pytest.raises(UnknownTypeError, match=r"config 'model'.*RepDetr3D"):
        _build(**{"model.type": "RepDetr"})
    with pytest.raises(ConfigArgumentError, match=r"'<the config given to build>'.*FPN needs.*num_outs"):
        MODELS.build(dict(type="FPN", in_channels=[8], out_channels=8))
