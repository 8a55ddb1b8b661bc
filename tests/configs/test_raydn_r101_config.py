"""The RayDN R101 teacher config: its stability settings, its torchvision R101 weights, and
training steps with gradient checkpointing and trainable BN on CPU at a tiny size."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from mmengine import Config

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.engine.optim import build_optimizer, build_scheduler
from projects.mmdet3d_plugin.engine.runtime_config import parse_runtime
from projects.mmdet3d_plugin.registry import MODELS
from tests.fixtures.batches import contract_batch
from tests.fixtures.tiny_models import tiny_raydn, without_randomness

from .test_raydn_configs import R50, _assert_matches_pinned, _config, _pinned

R101 = "raydn_r101_704_bs2_seq_428q_nui_60e"
#: torchvision's ResNet-101: bottleneck blocks per stage and the file name of IMAGENET1K_V1.
R101_BLOCKS = (3, 4, 23, 3)
R101_FILE = "resnet101-63fe2227.pth"


def torchvision_resnet101_shapes() -> dict[str, tuple[int, ...]]:
    """Key → shape of torchvision's ``resnet101().state_dict()``, written out from the
    architecture (not from our model): stem, 33 bottlenecks, ``fc``."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    inplanes = 64
    for stage, blocks in enumerate(R101_BLOCKS, start=1):
        planes = 64 * 2 ** (stage - 1)
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{prefix}.bn2", planes)
            shapes[f"{prefix}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{prefix}.bn3", planes * 4)
            if block == 0:
                shapes[f"{prefix}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{prefix}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes.update({"fc.weight": (1000, 2048), "fc.bias": (1000,)})
    return shapes


def test_stability_settings_and_runtime() -> None:
    cfg, r50 = _config(R101), _config(R50)
    backbone = cfg.model.img_backbone
    assert backbone.depth == 101
    assert backbone.init_cfg == dict(type="Pretrained", checkpoint="torchvision://resnet101")
    assert (backbone.with_cp, backbone.norm_eval, backbone.frozen_stages) == (True, False, 1)
    assert backbone.norm_cfg == dict(type="BN2d", requires_grad=True)
    runtime = parse_runtime(cfg)
    assert runtime.optimizer.custom_keys == {"img_backbone": {"lr_mult": 0.1, "warmup_iters": 2000}}
    assert runtime.schedule == parse_runtime(r50).schedule  # global warmup 500, cosine, 60 epochs
    assert runtime.load_from is None  # the R50 nuImages file would overwrite R101 blocks piecemeal
    for key in ("img_neck", "img_roi_head", "pts_bbox_head", "train_cfg"):
        assert cfg.model[key] == r50.model[key], key
    assert cfg.data == r50.data


@pytest.fixture(scope="module")
def r101_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(_config(R101).model)


def test_state_dict_matches_pinned_keys(r101_model) -> None:
    _assert_matches_pinned(r101_model, R101)
    r101, r50 = _pinned(R101), _pinned(R50)
    backbone = {k[len("img_backbone."):]: v for k, v in r101.items() if k.startswith("img_backbone.")}
    expected = {k: v for k, v in torchvision_resnet101_shapes().items() if not k.startswith("fc.")}
    assert backbone == expected
    assert {k: v for k, v in r101.items() if not k.startswith("img_backbone.")} == {
        k: v for k, v in r50.items() if not k.startswith("img_backbone.")}


def _torchvision_file(folder: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Write a torchvision-layout state dict with seeded values as ``folder/R101_FILE``."""
    generator = torch.Generator().manual_seed(101)
    state = {k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.rand(s, generator=generator)
             for k, s in shapes.items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / R101_FILE)
    return state


def test_backbone_loads_torchvision_r101_weights(r101_model, tmp_path, monkeypatch) -> None:
    """``torchvision://resnet101`` resolves to the hub cache; every tensor lands, ``fc.*`` is dropped."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no ckpts/ here: the hub cache is the one place looked at
    state = _torchvision_file(tmp_path / "hub" / "checkpoints", torchvision_resnet101_shapes())
    r101_model.img_backbone.init_weights()
    loaded = r101_model.img_backbone.state_dict()
    assert loaded.keys() == {k for k in state if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_wrong_or_truncated_r101_file_is_a_clear_error(r101_model, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "hub" / "checkpoints"
    shapes = {k: v for k, v in torchvision_resnet101_shapes().items() if not k.startswith("layer3.22.")}
    _torchvision_file(folder, shapes)  # an R101 file missing its last stage-3 block
    with pytest.raises(CheckpointError, match=r"layer3\.22\.conv1\.weight"):
        r101_model.img_backbone.init_weights()
    data = (folder / R101_FILE).read_bytes()
    (folder / R101_FILE).write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(CheckpointError, match=R101_FILE):
        r101_model.img_backbone.init_weights()


def _tiny_r101(with_cp: bool) -> torch.nn.Module:
    """The tiny RayDN of the fixtures (2 cameras, 32 channels) with the R101 config's backbone."""
    model = without_randomness(tiny_raydn(num_cams=2))
    backbone = {k: v for k, v in _config(R101).model.img_backbone.to_dict().items() if k != "init_cfg"}
    model["img_backbone"] = dict(backbone, with_cp=with_cp)
    model["img_neck"]["in_channels"] = [256, 512, 1024, 2048]
    torch.manual_seed(0)
    return MODELS.build(model)


def _loss_and_grads(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad()
    torch.manual_seed(1)
    losses = model(contract_batch(batch=1, num_cams=2), mode="loss")
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.fixture(scope="module")
def tiny_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    plain, checkpointed = _tiny_r101(with_cp=False), _tiny_r101(with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    return plain, checkpointed


def test_checkpointing_gives_the_same_loss_gradients_and_bn_statistics(tiny_pair) -> None:
    plain, checkpointed = tiny_pair
    loss_plain, grads_plain = _loss_and_grads(plain)
    loss_cp, grads_cp = _loss_and_grads(checkpointed)
    assert torch.isfinite(loss_plain) and torch.equal(loss_plain, loss_cp)
    assert grads_plain.keys() == grads_cp.keys()
    assert any(k.startswith("img_backbone.layer4.") for k in grads_cp)
    assert all(torch.isfinite(g).all() for g in grads_cp.values())
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grad, grads_cp[name], msg=name)
    buffers_cp = dict(checkpointed.named_buffers())
    for name, value in plain.named_buffers():
        if name.startswith("img_backbone."):
            torch.testing.assert_close(value, buffers_cp[name], msg=name)


def test_training_steps_update_bn_and_use_the_backbone_lr(tiny_pair) -> None:
    """Two optimizer steps with the config's optimizer and schedule: finite losses; BN
    statistics of the trainable stages move, the frozen stem and stage 1 do not; the
    backbone group runs at lr x 0.1 on its own 2000-iteration ramp."""
    _, model = tiny_pair
    runtime = parse_runtime(_config(R101))
    optimizer = build_optimizer(model, runtime.optimizer)
    scheduler = build_scheduler(optimizer, runtime.schedule)
    groups = {g["custom_key"]: g for g in optimizer.param_groups}
    assert groups["img_backbone"]["initial_lr"] == pytest.approx(0.1 * groups[""]["initial_lr"]) == pytest.approx(4e-5)
    stats = {k: v.clone() for k, v in model.img_backbone.state_dict().items() if "running_mean" in k}
    frozen = {n for n, p in model.img_backbone.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("conv1.", "bn1.", "layer1.")) for n in frozen)
    for step in range(2):
        loss, _ = _loss_and_grads(model)
        assert torch.isfinite(loss)
        optimizer.step()
        scheduler.step()
    ramp = {name: 1 - (1 - 2 / length) * (2 / 3) for name, length in (("", 500), ("img_backbone", 2000))}
    cosine = 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * 2 / runtime.schedule.max_iters))
    for name, group in groups.items():
        assert group["lr"] == pytest.approx(group["initial_lr"] * cosine * ramp[name])
    after = model.img_backbone.state_dict()
    assert not torch.equal(after["layer4.2.bn3.running_mean"], stats["layer4.2.bn3.running_mean"])
    assert torch.equal(after["layer1.0.bn1.running_mean"], stats["layer1.0.bn1.running_mean"])
    assert torch.equal(after["bn1.running_mean"], stats["bn1.running_mean"])
