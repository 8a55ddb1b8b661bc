"""Train and test entry points shared by ``tools/train.py``, ``tools/test.py`` and the distiller tools."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
from mmengine.config import Config

from ..core.checkpoint import load_checkpoint
from ..models.detectors.base import StreamingModel, check_streaming_model
from ..registry import DATASETS, MODELS
from .data_module import StreamingDataModule
from .detector_module import DetectorModule
from .initial_weights import load_initial_weights
from .nuscenes_evaluator import NuScenesEvaluator
from .precision import apply_feature_precision
from .preflight import preflight
from .runtime_config import RuntimeSpec, parse_runtime
from .trainer_factory import LaunchEnv, build_trainer, latest_checkpoint

DEFAULT_TRAIN_SAMPLER = {"type": "InfiniteGroupEachSampleInBatchSampler"}
DEFAULT_TEST_SAMPLER = {"type": "DistributedSampler"}


def load_config(path: str | Path, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """Read a python config (``_base_`` inheritance) and apply ``--cfg-options``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file not found: {path}")
    cfg = Config.fromfile(str(path))
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    for key in ("model", "data"):
        if key not in cfg:
            raise KeyError(f"Config {path} has no '{key}' section.")
    return cfg


def build_dataset(cfg: Config, split: str) -> Any:
    """Build ``cfg.data[split]`` (``train``, ``val`` or ``test``)."""
    if split not in cfg.data:
        raise KeyError(f"The config has no data.{split}.")
    return DATASETS.build(cfg.data[split])


def build_evaluator(dataset: Any, class_names: Sequence[str], out_dir: Path) -> NuScenesEvaluator:
    """The official evaluator over ``dataset``'s infos."""
    return NuScenesEvaluator(
        data_root=dataset.data_root,
        version=dataset.version,
        infos=dataset.infos,
        class_names=class_names,
        out_dir=out_dir,
    )


def _data_module(cfg: Config, train_set: Any, val_set: Any, seed: int) -> StreamingDataModule:
    return StreamingDataModule(
        train_set=train_set,
        val_set=val_set,
        train_sampler_cfg=cfg.data.get("shuffler_sampler", DEFAULT_TRAIN_SAMPLER),
        val_sampler_cfg=cfg.data.get("nonshuffler_sampler", DEFAULT_TEST_SAMPLER),
        samples_per_gpu=cfg.data.get("samples_per_gpu", 1),
        workers_per_gpu=cfg.data.get("workers_per_gpu", 0),
        seed=seed,
    )


def build_train_loader(cfg: Config, seed: int = 0) -> Any:
    """The training batches of ``cfg`` in the order a training run with ``seed`` sees them
    (streaming sampler, seeded augmentation), outside a trainer (one process)."""
    return _data_module(cfg, build_dataset(cfg, "train"), None, seed).train_dataloader()


def build_model(cfg: Config, init_weights: bool = True) -> StreamingModel:
    """``MODELS.build(cfg.model)``, checked to implement :class:`StreamingModel`, then its
    pretrained parts loaded (``init_weights``) unless ``init_weights=False`` (the weights
    come from a checkpoint next)."""
    model = check_streaming_model(MODELS.build(cfg.model, config_path="model"), f"model.type={cfg.model.get('type')!r}")
    if init_weights:
        model.init_weights()
    return model


def train(
    cfg: Config,
    work_dir: str | Path,
    *,
    resume: bool | str = False,
    seed: int = 0,
    deterministic: bool = False,
    env: LaunchEnv | None = None,
    enable_progress_bar: bool = True,
    extra_callbacks: Sequence[L.Callback] = (),
    precision: str | None = None,
) -> DetectorModule:
    """Train ``cfg.model`` for ``runner.max_iters`` iterations; returns the trained module.

    ``resume=True`` continues from ``work_dir/latest.pth`` (or ``resume_from``), a path
    continues from that file. ``load_from`` only initialises the weights. ``precision``
    (``fp32`` / ``bf16-mixed`` / ``16-mixed``) overrides the config's training precision.
    The data is checked (:func:`.preflight.preflight`: the info files, the first samples'
    images, the evaluator's tables when evaluating) before the trainer writes anything.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    work_dir = Path(work_dir)
    env = env or LaunchEnv.detect()
    runtime = _runtime_on(env, parse_runtime(cfg), train=precision)
    model = build_model(cfg)
    apply_feature_precision(model, runtime.precision)
    if runtime.load_from is not None and not resume:
        load_initial_weights(model, runtime.load_from)
    train_set = build_dataset(cfg, "train")
    val_set = build_dataset(cfg, "val") if "val" in cfg.data else None
    preflight(train_set, "train", evaluate=False)
    if val_set is not None and runtime.eval_interval:
        preflight(val_set, "val", evaluate=True)
    evaluator = None
    if val_set is not None:
        evaluator = build_evaluator(val_set, train_set.classes, work_dir / "eval")
    module = DetectorModule(model, runtime, evaluator)
    data = _data_module(cfg, train_set, val_set, seed)
    trainer = build_trainer(
        runtime, work_dir, env=env, deterministic=deterministic,
        find_unused_parameters=bool(cfg.get("find_unused_parameters", False)),
        enable_progress_bar=enable_progress_bar, extra_callbacks=extra_callbacks,
    )
    ckpt_path = _resume_path(resume, runtime.resume_from, work_dir)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module


def _runtime_on(env: LaunchEnv, runtime: RuntimeSpec, train: str | None = None,
                test: str | None = None) -> RuntimeSpec:
    """``runtime`` with the command line's precision, as it can run on ``env``'s device."""
    spec = runtime.precision.override(train=train, test=test).on_device(env.accelerator)
    return dataclasses.replace(runtime, precision=spec)


def _resume_path(resume: bool | str, resume_from: str | None, work_dir: Path) -> str | None:
    if isinstance(resume, str) and resume:
        return resume
    if resume:
        candidate = Path(resume_from) if resume_from else latest_checkpoint(work_dir)
        if not candidate.is_file():
            raise FileNotFoundError(
                f"--resume was given but there is no checkpoint at {candidate}; "
                "train without --resume first, or pass the checkpoint path."
            )
        return str(candidate)
    return resume_from or None


def test(
    cfg: Config,
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    env: LaunchEnv | None = None,
    enable_progress_bar: bool = True,
    precision: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on ``cfg.data.test`` with the official evaluator, in float32
    unless ``precision`` (or the config's ``precision.test``) asks for a mixed precision.
    The info file, the first samples' images and the nuScenes tables the evaluator needs are
    checked (:func:`.preflight.preflight`) before the model is built or anything is run."""
    env = env or LaunchEnv.detect()
    runtime = _runtime_on(env, parse_runtime(cfg), test=precision)
    test_set = build_dataset(cfg, "test")
    preflight(test_set, "test", evaluate=True)
    model = build_model(cfg, init_weights=False)
    load_checkpoint(model, checkpoint, strict=True)
    evaluator = build_evaluator(test_set, test_set.classes, Path(out_dir))
    module = DetectorModule(model, runtime, evaluator)
    data = _data_module(cfg, None, test_set, seed=0)
    trainer = build_trainer(runtime, out_dir, env=env, enable_progress_bar=enable_progress_bar)
    trainer.test(module, datamodule=data, verbose=False)
    return module.last_metrics
