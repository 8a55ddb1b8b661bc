"""The config layout: the R50 models share _base_/models, the synthetic configs rebuild the
nuScenes pipelines at their image size, and the merged configs pass the key checks."""
from __future__ import annotations

import logging

import pytest
from mmengine import Config

from projects.mmdet3d_plugin.core import batch_contract
from projects.mmdet3d_plugin.datasets.nuscenes_dataset import sample_keys_of
from projects.mmdet3d_plugin.engine.config_keys import ignored_upstream_keys
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime
from projects.mmdet3d_plugin.paths import REPO_ROOT

CONFIGS = REPO_ROOT / "projects/configs"
MODEL_BASE = "../_base_/models/streaming-r50-428q.py"
R50 = ("RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py",
       "StreamPETR/stream_petr_r50_flash_704_bs2_seq_428q_nui_60e.py")
SYNTHETIC = "synthetic/raydn_r50_synthetic.py"
# Values of the model base that an R50 config restating them would write again.
SHARED = ("memory_len", "topk_proposals", "code_weights", "NMSFreeCoder", "type='FocalLoss'", "HungarianAssigner3D",
          "depth=50", "norm_eval", "feedforward_channels", "operation_order")


@pytest.mark.parametrize("name", R50)
def test_r50_configs_inherit_the_shared_model(name) -> None:
    lines = (CONFIGS / name).read_text().splitlines()
    assert f"_base_ = ['{MODEL_BASE}']" in lines
    code = "\n".join(line.split("#")[0] for line in lines)
    assert [word for word in SHARED if word in code] == []


@pytest.mark.parametrize("name", R50)
def test_merged_r50_configs_pass_the_key_checks(name, caplog) -> None:
    cfg = Config.fromfile(str(CONFIGS / name))
    with caplog.at_level(logging.WARNING):
        parse_runtime(cfg)
    assert ignored_upstream_keys(cfg) == [] and not [r for r in caplog.records if "no effect" in r.getMessage()]
    for split in ("train", "val", "test"):
        required = sample_keys_of(cfg.data[split].collect_keys)
        assert set(batch_contract.keys(batch_contract.META)) <= set(required)


def test_synthetic_pipelines_are_the_nuscenes_ones_at_the_world_size() -> None:
    nuscenes, synthetic = (Config.fromfile(str(CONFIGS / name)) for name in (R50[0], SYNTHETIC))
    assert synthetic.ida_aug_conf == dict(nuscenes.ida_aug_conf, resize_lim=(0.32, 0.36), final_dim=(96, 256),
                                          H=450, W=800)
    for key in ("train_pipeline", "test_pipeline"):
        assert [step.type for step in synthetic[key]] == [step.type for step in nuscenes[key]]
        resize = [step for step in synthetic[key] if step.type == "ResizeCropFlipRotImage"]
        assert [step.data_aug_conf for step in resize] == [synthetic.ida_aug_conf]
    assert "collect_keys" not in synthetic.data.train and synthetic.data.train.version == "v1.0-mini"
