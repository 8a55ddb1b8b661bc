"""A tiny RayDN memorises the four samples of the tiny world's val scene (issue #3 acceptance).

Trained on those samples without augmentation and evaluated on the same samples with the
official nuScenes evaluator, the detector must (1) lower its training loss several-fold and
(2) score a high mAP: it proves that the losses, the assignment, the box coding, decoding and
the submission writer agree with each other end to end.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest

from projects.mmdet3d_plugin.engine.runner import load_config, train
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv

OVERFIT_CONFIG = Path(__file__).resolve().parent / "configs" / "overfit_raydn.py"
CPU = LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1)


class LossHistory(L.Callback):
    """Collects the logged total training loss of every iteration."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        self.losses.append(float(trainer.callback_metrics["loss"]))


@pytest.mark.slow
def test_tiny_raydn_overfits_a_few_samples(synthetic_world, synthetic_infos, tmp_path):
    val_infos = str(synthetic_infos["val"])
    options = {f"data.{split}.{key}": value
               for split in ("train", "val", "test")
               for key, value in (("data_root", str(synthetic_world)), ("ann_file", val_infos))}
    cfg = load_config(OVERFIT_CONFIG, options)
    history = LossHistory()
    module = train(cfg, tmp_path, seed=0, env=CPU, enable_progress_bar=False, extra_callbacks=[history])

    assert len(history.losses) == cfg.runner.max_iters
    first, last = history.losses[:10], history.losses[-10:]
    assert sum(last) < sum(first) / 3, f"loss fell only from {first} to {last}"
    metrics = module.last_metrics
    assert metrics["mAP"] > 0.5, f"over-fitted mAP is {metrics['mAP']:.3f}; per class: {metrics.get('per_class')}"
    assert metrics["mATE"] < 0.5
