"""Top-level config keys: typos of read keys are refused, upstream runtime keys are ignored
with a warning, free variables are accepted; every shipped config passes."""
from __future__ import annotations

import logging

import pytest
from mmengine.config import Config

from projects.mmdet3d_plugin.engine.config_keys import ignored_upstream_keys
from projects.mmdet3d_plugin.engine.runner import load_config
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
SHIPPED = sorted(p for folder in ("projects/configs", "tests/engine/configs", "tests/fixtures/configs",
                                  "tests/kd/configs")
                 for p in (REPO / folder).rglob("*.py") if "_base_" not in p.parts)


def _runtime(**extra):
    cfg = dict(optimizer=dict(type="AdamW", lr=1e-3), runner=dict(type="IterBasedRunner", max_iters=10))
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize("typo, meant", [("checkpoint_confg", "checkpoint_config"),
                                         ("optimzer", "optimizer"), ("evalution", "evaluation"),
                                         ("lr_confg", "lr_config"), ("class_name", "class_names")])
def test_top_level_typo_is_refused_with_the_key_meant(typo, meant):
    with pytest.raises(KeyError, match=rf"'{typo}'.*did you mean '{meant}'"):
        parse_runtime(_runtime(**{typo: dict(interval=1)}))


def test_cfg_options_typo_is_refused():
    cfg = load_config(REPO / "tests" / "engine" / "configs" / "tiny_raydn.py",
                      {"checkpoint_confg.interval": 1})
    with pytest.raises(KeyError, match="checkpoint_config"):
        parse_runtime(cfg)


def test_free_variables_pass_and_upstream_keys_are_named_as_ignored(caplog):
    cfg = _runtime(num_gpus=8, ida_aug_conf={}, train_pipeline=[], batch_size=2, dist_params={},
                   log_level="INFO", workflow=[("train", 1)], plugin=True, plugin_dir="x/")
    with caplog.at_level(logging.WARNING):
        parse_runtime(cfg)
    warned = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert len(warned) == 1
    assert all(key in warned[0] for key in ("dist_params", "log_level", "plugin", "plugin_dir", "workflow"))
    assert "num_gpus" not in warned[0]


@pytest.mark.parametrize("section, key", [("log_config", "by_epoch"), ("evaluation", "save_best"),
                                          ("checkpoint_config", "out_dir")])
def test_section_key_nothing_reads_is_refused_by_name(section, key):
    with pytest.raises(KeyError, match=rf"'{section}\.{key}'"):
        parse_runtime(_runtime(**{section: dict(interval=1, **{key: True})}))


def test_upstream_key_warns_once_per_check(caplog):
    cfg = _runtime(file_client_args=dict(backend="disk"), log_config=dict(interval=5, hooks=[]))
    with caplog.at_level(logging.WARNING):
        parse_runtime(cfg)
    warned = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert len(warned) == 1 and "file_client_args" in warned[0] and "log_config.hooks" in warned[0]


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_passes_the_key_check(config):
    cfg = Config.fromfile(str(config))
    if "runner" not in cfg:
        pytest.skip("a model-only config (no runtime sections)")
    parse_runtime(cfg)


def test_upstream_section_keys_are_named_in_the_warning(caplog):
    cfg = _runtime(log_config=dict(interval=5, hooks=[dict(type="TextLoggerHook")]),
                   evaluation=dict(interval=0, pipeline=[], metric="bbox"))
    with caplog.at_level(logging.WARNING):
        parse_runtime(cfg)
    warned = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert len(warned) == 1
    assert all(key in warned[0] for key in ("log_config.hooks", "evaluation.pipeline", "evaluation.metric"))


@pytest.mark.parametrize("config", sorted((REPO / "projects/configs").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_carry_no_unread_upstream_key(config):
    assert ignored_upstream_keys(Config.fromfile(str(config))) == []
