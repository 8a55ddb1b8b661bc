"""Parsing the mmcv-style runtime sections of a config."""
from __future__ import annotations

import pytest

from projects.mmdet3d_plugin.engine.runtime_config import LoadFromSpec, parse_runtime


def streampetr_runtime(**overrides):
    cfg = dict(
        optimizer=dict(type="AdamW", lr=4e-4, weight_decay=0.01,
                       paramwise_cfg=dict(custom_keys={"img_backbone": dict(lr_mult=0.1)})),
        optimizer_config=dict(type="Fp16OptimizerHook", loss_scale="dynamic",
                              grad_clip=dict(max_norm=35, norm_type=2)),
        lr_config=dict(policy="CosineAnnealing", warmup="linear", warmup_iters=500,
                       warmup_ratio=1.0 / 3, min_lr_ratio=1e-3),
        runner=dict(type="IterBasedRunner", max_iters=1000),
        checkpoint_config=dict(interval=100, max_keep_ckpts=3),
        log_config=dict(interval=50, hooks=[dict(type="TextLoggerHook")]),
        evaluation=dict(interval=1000, pipeline=[]),
        load_from=None,
        resume_from=None,
    )
    cfg.update(overrides)
    return cfg


def test_streampetr_sections_parse():
    spec = parse_runtime(streampetr_runtime())
    assert spec.optimizer.type == "AdamW"
    assert spec.optimizer.custom_keys == {"img_backbone": {"lr_mult": 0.1}}
    assert spec.schedule.max_iters == 1000 and spec.schedule.warmup_iters == 500
    assert spec.grad_clip_max_norm == 35.0 and spec.grad_clip_norm_type == 2.0
    assert spec.precision.train == "16-mixed" and spec.precision.scope == "image_features"  # the fp16 hook
    assert (spec.checkpoint_interval, spec.max_keep_ckpts, spec.eval_interval) == (100, 3, 1000)


def test_typo_in_a_section_names_the_key_and_close_match():
    cfg = streampetr_runtime(lr_config=dict(policy="CosineAnnealing", warmup="linear", warmup_iter=500))
    with pytest.raises(KeyError, match=r"lr_config\.warmup_iter.*warmup_iters"):
        parse_runtime(cfg)


def test_typo_in_custom_key_multiplier_raises():
    cfg = streampetr_runtime(optimizer=dict(
        type="AdamW", lr=1e-3, paramwise_cfg=dict(custom_keys={"img_backbone": dict(lr_mul=0.1)})))
    with pytest.raises(KeyError, match="lr_mult"):
        parse_runtime(cfg)


def test_epoch_based_runner_is_refused():
    with pytest.raises(ValueError, match="IterBasedRunner"):
        parse_runtime(streampetr_runtime(runner=dict(type="EpochBasedRunner", max_epochs=24)))


def test_missing_runner_is_named():
    cfg = streampetr_runtime()
    del cfg["runner"]
    with pytest.raises(KeyError, match="runner"):
        parse_runtime(cfg)


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="AdamW"):
        parse_runtime(streampetr_runtime(optimizer=dict(type="Lamb", lr=1e-3)))


def test_evaluation_interval_zero_turns_evaluation_off():
    assert parse_runtime(streampetr_runtime(evaluation=dict(interval=0))).eval_interval == 0


@pytest.mark.parametrize("section", ["evaluation", "checkpoint_config", "log_config"])
def test_negative_interval_is_refused(section):
    with pytest.raises(ValueError, match=rf"{section}\.interval must be"):
        parse_runtime(streampetr_runtime(**{section: dict(interval=-1)}))


@pytest.mark.parametrize("section", ["checkpoint_config", "log_config"])
def test_only_evaluation_can_be_switched_off(section):
    with pytest.raises(ValueError, match="positive number of iterations, got 0"):
        parse_runtime(streampetr_runtime(**{section: dict(interval=0)}))


def test_load_from_is_strict_unless_load_from_strict_is_false():
    assert parse_runtime(streampetr_runtime()).load_from is None
    assert parse_runtime(streampetr_runtime(load_from="ckpts/a.pth")).load_from == LoadFromSpec("ckpts/a.pth", True)
    spec = parse_runtime(streampetr_runtime(load_from="ckpts/a.pth", load_from_strict=False)).load_from
    assert spec == LoadFromSpec("ckpts/a.pth", strict=False)
    # --cfg-options load_from=None on a non-strict config: nothing is loaded, no error
    assert parse_runtime(streampetr_runtime(load_from=None, load_from_strict=False)).load_from is None


def test_load_from_mistakes_are_named():
    with pytest.raises(KeyError, match=r"'load_from_stict'.*'load_from_strict'"):
        parse_runtime(streampetr_runtime(load_from="a.pth", load_from_stict=False))
    with pytest.raises(TypeError, match=r"load_from_strict must be True or False, got 'no'"):
        parse_runtime(streampetr_runtime(load_from="a.pth", load_from_strict="no"))
    with pytest.raises(TypeError, match=r"load_from must be None or a checkpoint file path.*load_from_strict"):
        parse_runtime(streampetr_runtime(load_from=dict(path="a.pth", strict=False)))


@pytest.mark.parametrize("max_iters", [0, -5])
def test_max_iters_must_be_positive(max_iters):
    with pytest.raises(ValueError, match=rf"runner.max_iters must be a positive.*got {max_iters}"):
        parse_runtime(streampetr_runtime(runner=dict(type="IterBasedRunner", max_iters=max_iters)))


def _with_backbone_options(**options):
    return streampetr_runtime(optimizer=dict(
        type="AdamW", lr=4e-4, paramwise_cfg=dict(custom_keys={"img_backbone": options})))


def test_group_warmup_iters_parses_as_an_integer():
    spec = parse_runtime(_with_backbone_options(lr_mult=0.1, warmup_iters=800))
    assert spec.optimizer.custom_keys == {"img_backbone": {"lr_mult": 0.1, "warmup_iters": 800}}
    assert isinstance(spec.optimizer.custom_keys["img_backbone"]["warmup_iters"], int)


def test_typo_in_group_warmup_names_the_close_match():
    with pytest.raises(KeyError, match=r"custom_keys\.img_backbone\.warmup_iter\b.*warmup_iters"):
        parse_runtime(_with_backbone_options(lr_mult=0.1, warmup_iter=800))


@pytest.mark.parametrize("value", [-1, 10.5, "800", True])
def test_group_warmup_iters_must_be_a_whole_number(value):
    with pytest.raises(ValueError, match=r"img_backbone\.warmup_iters must be a non-negative whole"):
        parse_runtime(_with_backbone_options(warmup_iters=value))


def test_group_warmup_needs_the_linear_warmup_and_must_fit_the_run():
    cfg = _with_backbone_options(warmup_iters=800)
    cfg["lr_config"] = dict(policy="CosineAnnealing", min_lr_ratio=1e-3)
    with pytest.raises(ValueError, match=r"warmup_iters needs lr_config\.warmup='linear'"):
        parse_runtime(cfg)
    with pytest.raises(ValueError, match=r"longer than the run \(runner\.max_iters=1000\)"):
        parse_runtime(_with_backbone_options(warmup_iters=1001))
