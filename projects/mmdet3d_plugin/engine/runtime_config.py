"""A validated view of the mmcv-style runtime keys of a StreamPETR / RayDN config.

Configs keep the top-level keys users know (``optimizer``, ``optimizer_config``,
``lr_config``, ``runner``, ``fp16`` / ``precision``, ``checkpoint_config``, ``log_config``,
``evaluation``, ``load_from``, ``load_from_strict``, ``resume_from``). :func:`parse_runtime`
reads them once into plain dataclasses and rejects unknown keys inside them with close
matches, so a typo fails before any training starts. Unknown top-level keys follow the rule
of :mod:`.config_keys`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .config_keys import check_top_level_keys
from .precision import PrecisionSpec, parse_precision

SUPPORTED_OPTIMIZERS = ("AdamW", "Adam", "SGD")
#: Options of one ``optimizer.paramwise_cfg.custom_keys`` entry. ``warmup_iters`` (ours, not
#: mmcv's) gives that group its own linear warmup length; see :func:`.optim.lr_factor`.
CUSTOM_KEY_OPTIONS = ("lr_mult", "decay_mult", "warmup_iters")


@dataclass(frozen=True)
class OptimizerSpec:
    """``optimizer`` (+ ``paramwise_cfg.custom_keys``) of a config.

    ``custom_keys`` maps a parameter-name substring to its options (:data:`CUSTOM_KEY_OPTIONS`):
    ``lr_mult``, ``decay_mult`` and an optional per-group ``warmup_iters``.
    """

    type: str
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    custom_keys: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleSpec:
    """``lr_config`` + ``runner``: linear warmup then cosine annealing, iteration based."""

    max_iters: int
    policy: str = "CosineAnnealing"
    warmup: str | None = None
    warmup_iters: int = 0
    warmup_ratio: float = 1.0
    min_lr_ratio: float = 0.0


@dataclass(frozen=True)
class LoadFromSpec:
    """``load_from`` + ``load_from_strict``: the weights a training run starts from (not used
    when resuming).

    Strict (the default) requires every key and shape to match. ``load_from_strict=False``
    is mmcv's ``load_from``: after the model's own ``init_weights`` (e.g. an ImageNet
    backbone), only the file's tensors whose names and shapes match are copied.
    """

    path: str
    strict: bool = True


@dataclass(frozen=True)
class RuntimeSpec:
    """Everything the engine needs from a config besides ``model`` and ``data``."""

    optimizer: OptimizerSpec
    schedule: ScheduleSpec
    grad_clip_max_norm: float | None
    grad_clip_norm_type: float
    precision: PrecisionSpec
    checkpoint_interval: int
    max_keep_ckpts: int
    log_interval: int
    eval_interval: int  # 0: no evaluation during training
    load_from: LoadFromSpec | None
    resume_from: str | None


def _check_keys(section: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Raise a ``KeyError`` naming every key of ``given`` not in ``allowed``."""
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=3)
            hint = f" Did you mean {close}?" if close else f" Allowed keys: {sorted(allowed)}."
            raise KeyError(f"Unknown key '{section}.{key}' in the config.{hint}")


def _require(cfg: Mapping[str, Any], key: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise KeyError(f"The config has no '{key}'; the engine needs it (see docs/training.md).")
    return cfg[key]


def _group_warmup_iters(name: str, value: Any) -> int:
    """``custom_keys.<name>.warmup_iters`` as a non-negative whole number of iterations."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise ValueError(f"optimizer.paramwise_cfg.custom_keys.{name}.warmup_iters must be a "
                         f"non-negative whole number of iterations, got {value!r}.")
    return int(value)


def _parse_optimizer(cfg: Mapping[str, Any]) -> OptimizerSpec:
    opt = dict(_require(cfg, "optimizer"))
    _check_keys(
        "optimizer", opt, ("type", "lr", "weight_decay", "betas", "momentum", "paramwise_cfg")
    )
    if opt.get("type") not in SUPPORTED_OPTIMIZERS:
        raise ValueError(
            f"optimizer.type={opt.get('type')!r} is not supported; use one of {SUPPORTED_OPTIMIZERS}."
        )
    paramwise = dict(opt.pop("paramwise_cfg", None) or {})
    _check_keys("optimizer.paramwise_cfg", paramwise, ("custom_keys",))
    custom_keys: dict[str, dict[str, float]] = {}
    for name, mults in dict(paramwise.get("custom_keys", {})).items():
        mults = dict(mults)
        _check_keys(f"optimizer.paramwise_cfg.custom_keys.{name}", mults, CUSTOM_KEY_OPTIONS)
        custom_keys[name] = {k: float(v) for k, v in mults.items()}
        if "warmup_iters" in mults:
            custom_keys[name]["warmup_iters"] = _group_warmup_iters(name, mults["warmup_iters"])
    return OptimizerSpec(
        type=opt["type"],
        lr=float(_require(opt, "lr")),
        weight_decay=float(opt.get("weight_decay", 0.0)),
        betas=tuple(opt.get("betas", (0.9, 0.999))),
        momentum=float(opt.get("momentum", 0.9)),
        custom_keys=custom_keys,
    )


def _parse_schedule(cfg: Mapping[str, Any]) -> ScheduleSpec:
    runner = dict(_require(cfg, "runner"))
    if runner.get("type") != "IterBasedRunner":
        raise ValueError(
            f"runner.type={runner.get('type')!r} is not supported: training is iteration based "
            "(streaming), use runner=dict(type='IterBasedRunner', max_iters=...)."
        )
    _check_keys("runner", runner, ("type", "max_iters"))
    lr = dict(cfg.get("lr_config") or {"policy": "fixed"})
    _check_keys(
        "lr_config",
        lr,
        ("policy", "warmup", "warmup_iters", "warmup_ratio", "min_lr_ratio", "min_lr", "by_epoch"),
    )
    if lr.get("policy") not in ("CosineAnnealing", "fixed"):
        raise ValueError(
            f"lr_config.policy={lr.get('policy')!r} is not supported; use 'CosineAnnealing' or 'fixed'."
        )
    if lr.get("warmup") not in (None, "linear"):
        raise ValueError(f"lr_config.warmup={lr.get('warmup')!r} is not supported; use 'linear' or None.")
    if "min_lr" in lr:
        raise ValueError("lr_config.min_lr is not supported; give min_lr_ratio (fraction of the base lr).")
    max_iters = int(_require(runner, "max_iters"))
    if max_iters < 1:
        raise ValueError(f"runner.max_iters must be a positive number of iterations, got {max_iters}; "
                         "to evaluate a checkpoint without training use tools/test.py.")
    return ScheduleSpec(
        max_iters=max_iters,
        policy=lr["policy"],
        warmup=lr.get("warmup"),
        warmup_iters=int(lr.get("warmup_iters", 0)) if lr.get("warmup") else 0,
        warmup_ratio=float(lr.get("warmup_ratio", 1.0)),
        min_lr_ratio=float(lr.get("min_lr_ratio", 0.0)),
    )


def _parse_grad_clip(cfg: Mapping[str, Any]) -> tuple[float | None, float]:
    opt_cfg = dict(cfg.get("optimizer_config") or {})
    _check_keys("optimizer_config", opt_cfg, ("type", "grad_clip", "loss_scale", "cumulative_iters"))
    if int(opt_cfg.get("cumulative_iters", 1)) != 1:
        raise ValueError("optimizer_config.cumulative_iters > 1 is not supported.")
    clip = opt_cfg.get("grad_clip")
    if not clip:
        return None, 2.0
    clip = dict(clip)
    _check_keys("optimizer_config.grad_clip", clip, ("max_norm", "norm_type"))
    return float(_require(clip, "max_norm")), float(clip.get("norm_type", 2.0))


def _interval(cfg: Mapping[str, Any], section: str, default: int, *, allow_off: bool = False) -> dict[str, Any]:
    """``cfg[section]`` as a dict whose ``interval`` is a positive count (or 0 if ``allow_off``)."""
    value = dict(cfg.get(section) or {})
    value.setdefault("interval", default)
    interval = int(value["interval"])
    if interval < 0 or (interval == 0 and not allow_off):
        what = "a positive number of iterations" + (" or 0 (off)" if allow_off else "")
        raise ValueError(f"{section}.interval must be {what}, got {interval}.")
    return value


LOAD_FROM_KEYS = ("load_from", "load_from_strict")


def _parse_load_from(cfg: Mapping[str, Any]) -> LoadFromSpec | None:
    """``load_from`` (None or a path) and ``load_from_strict`` (a bool, default True)."""
    for key in cfg:
        if key.startswith("load_from") and key not in LOAD_FROM_KEYS:
            close = difflib.get_close_matches(key, LOAD_FROM_KEYS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known: {list(LOAD_FROM_KEYS)}."
            raise KeyError(f"Unknown top-level key '{key}' in the config.{hint}")
    path, strict = cfg.get("load_from"), cfg.get("load_from_strict", True)
    if not isinstance(strict, bool):
        raise TypeError(f"load_from_strict must be True or False, got {strict!r}.")
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise TypeError(f"load_from must be None or a checkpoint file path, got {path!r}; "
                        "strictness is the separate key load_from_strict.")
    return LoadFromSpec(path=path, strict=strict)


def _check_group_warmups(optimizer: OptimizerSpec, schedule: ScheduleSpec) -> None:
    """A group's ``warmup_iters`` ramps from ``lr_config.warmup_ratio`` like the global
    warmup, so it needs ``lr_config.warmup='linear'`` and must end within the run."""
    for name, options in optimizer.custom_keys.items():
        if "warmup_iters" not in options:
            continue
        where = f"optimizer.paramwise_cfg.custom_keys.{name}.warmup_iters"
        if schedule.warmup != "linear":
            raise ValueError(f"{where} needs lr_config.warmup='linear' (the group ramps up from "
                             f"lr_config.warmup_ratio like the global warmup); got warmup={schedule.warmup!r}.")
        if options["warmup_iters"] > schedule.max_iters:
            raise ValueError(f"{where}={int(options['warmup_iters'])} is longer than the run "
                             f"(runner.max_iters={schedule.max_iters}).")


def parse_runtime(cfg: Mapping[str, Any]) -> RuntimeSpec:
    """Read and validate the runtime sections of a config (an mmengine ``Config`` or dict);
    top-level keys follow :func:`.config_keys.check_top_level_keys`."""
    check_top_level_keys(cfg)
    schedule = _parse_schedule(cfg)
    optimizer = _parse_optimizer(cfg)
    _check_group_warmups(optimizer, schedule)
    clip_norm, clip_type = _parse_grad_clip(cfg)
    ckpt = _interval(cfg, "checkpoint_config", schedule.max_iters)
    _check_keys("checkpoint_config", ckpt, ("interval", "max_keep_ckpts", "by_epoch"))
    log = _interval(cfg, "log_config", 50)
    _check_keys("log_config", log, ("interval", "hooks"))
    evaluation = _interval(cfg, "evaluation", schedule.max_iters, allow_off=True)
    _check_keys("evaluation", evaluation, ("interval", "pipeline", "metric"))
    return RuntimeSpec(
        optimizer=optimizer,
        schedule=schedule,
        grad_clip_max_norm=clip_norm,
        grad_clip_norm_type=clip_type,
        precision=parse_precision(cfg),
        checkpoint_interval=int(ckpt["interval"]),
        max_keep_ckpts=int(ckpt.get("max_keep_ckpts", -1)),
        log_interval=int(log["interval"]),
        eval_interval=int(evaluation["interval"]),
        load_from=_parse_load_from(cfg),
        resume_from=cfg.get("resume_from"),
    )
