"""ResNet: torchvision key names, feature metadata, freezing, checkpointing, init."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError, save_checkpoint
from projects.mmdet3d_plugin.models.backbones.resnet import ResNet
from projects.mmdet3d_plugin.registry import MODELS

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def torchvision_keys(depth: int) -> set[str]:
    """torchvision's ResNet state-dict keys without ``fc``, derived from the architecture."""
    bottleneck = depth >= 50
    keys = {"conv1.weight"} | {f"bn1.{s}" for s in BN_SUFFIXES}
    convs = (1, 2, 3) if bottleneck else (1, 2)
    for stage, num_blocks in enumerate(BLOCKS[depth], start=1):
        for block in range(num_blocks):
            prefix = f"layer{stage}.{block}."
            for k in convs:
                keys.add(f"{prefix}conv{k}.weight")
                keys |= {f"{prefix}bn{k}.{s}" for s in BN_SUFFIXES}
            if block == 0 and (stage > 1 or bottleneck):
                keys.add(f"{prefix}downsample.0.weight")
                keys |= {f"{prefix}downsample.1.{s}" for s in BN_SUFFIXES}
    return keys


@pytest.mark.parametrize("depth, count", [(18, 120), (34, 216), (50, 318), (101, 624)])
def test_state_dict_keys_equal_torchvision(depth, count):
    with torch.device("meta"):
        model = ResNet(depth=depth)
    keys = set(model.state_dict())
    assert len(keys) == count
    assert keys == torchvision_keys(depth)


def test_resnet18_and_50_parameter_shapes_match_torchvision():
    with torch.device("meta"):
        r18, r50 = ResNet(depth=18), ResNet(depth=50)
    s18, s50 = r18.state_dict(), r50.state_dict()
    assert s18["conv1.weight"].shape == (64, 3, 7, 7)
    assert s18["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert s18["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert s50["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert s50["layer3.5.conv3.weight"].shape == (1024, 256, 1, 1)
    assert s50["layer4.0.conv2.weight"].shape == (512, 512, 3, 3)


@pytest.mark.parametrize(
    "depth, base, out_indices", [(18, 8, (0, 1, 2, 3)), (50, 8, (2, 3)), (34, 4, (1,))]
)
def test_feature_metadata_matches_outputs(depth, base, out_indices):
    model = ResNet(depth=depth, base_channels=base, out_indices=out_indices).eval()
    image = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        outs = model(image)
    assert len(outs) == len(out_indices) == len(model.out_channels) == len(model.out_strides)
    for out, channels, stride in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, channels, 64 // stride, 96 // stride)
    assert model.stage_strides == (4, 8, 16, 32)


def test_full_width_metadata():
    with torch.device("meta"):
        r50 = ResNet(depth=50, out_indices=(2, 3))
        r18 = ResNet(depth=18)
    assert r50.out_channels == (1024, 2048) and r50.out_strides == (16, 32)
    assert r18.out_channels == (64, 128, 256, 512)


def test_styles_put_the_stride_where_expected():
    pytorch = ResNet(depth=50, base_channels=4, style="pytorch")
    caffe = ResNet(depth=50, base_channels=4, style="caffe")
    assert pytorch.layer2[0].conv1.stride == (1, 1) and pytorch.layer2[0].conv2.stride == (2, 2)
    assert caffe.layer2[0].conv1.stride == (2, 2) and caffe.layer2[0].conv2.stride == (1, 1)


def test_frozen_stages_and_norm_eval():
    model = ResNet(depth=18, base_channels=4, frozen_stages=1, norm_eval=False)
    frozen = [model.conv1, model.bn1, model.layer1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    model.train()
    assert not model.bn1.training and not model.layer1[0].bn1.training
    assert model.layer2[0].bn1.training
    model.norm_eval = True
    model.train()
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.layer2[0].conv1.training


def test_norm_requires_grad_false_freezes_only_bn():
    model = ResNet(depth=18, base_channels=4, norm_cfg=dict(type="BN2d", requires_grad=False))
    assert not model.layer3[1].bn2.weight.requires_grad
    assert model.layer3[1].conv2.weight.requires_grad


def _outputs_and_grads(model: ResNet, image: torch.Tensor) -> tuple[list[torch.Tensor], dict]:
    model.train()
    outs = model(image)
    sum(o.square().sum() for o in outs).backward()
    return [o.detach() for o in outs], {n: p.grad for n, p in model.named_parameters()}


def test_with_cp_gives_identical_outputs_and_gradients():
    torch.manual_seed(0)
    plain = ResNet(depth=18, base_channels=4, out_indices=(2, 3))
    plain.init_weights()
    with_cp = ResNet(depth=18, base_channels=4, out_indices=(2, 3), with_cp=True)
    with_cp.load_state_dict(plain.state_dict())
    image = torch.randn(1, 3, 64, 64)
    outs_plain, grads_plain = _outputs_and_grads(plain, image)
    outs_cp, grads_cp = _outputs_and_grads(with_cp, image)
    for a, b in zip(outs_plain, outs_cp):
        torch.testing.assert_close(a, b)
    assert grads_plain.keys() == grads_cp.keys()
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grad, grads_cp[name], msg=name)


def test_with_cp_and_trainable_bn_count_each_batch_once():
    """norm_eval=False: checkpointing recomputes every BN in backward; the running statistics
    (and the batch counter) must still end where one plain forward leaves them."""
    torch.manual_seed(0)
    trainable_bn = dict(norm_cfg=dict(type="BN2d", requires_grad=True), norm_eval=False)
    plain = ResNet(depth=50, base_channels=4, out_indices=(2, 3), **trainable_bn)
    plain.init_weights()
    with_cp = ResNet(depth=50, base_channels=4, out_indices=(2, 3), with_cp=True, **trainable_bn)
    with_cp.load_state_dict(plain.state_dict())
    before = {k: v.clone() for k, v in plain.state_dict().items() if "running" in k}
    image = torch.randn(2, 3, 64, 64)
    _, grads_plain = _outputs_and_grads(plain, image)
    _, grads_cp = _outputs_and_grads(with_cp, image)
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grad, grads_cp[name], msg=name)
    buffers_plain, buffers_cp = dict(plain.named_buffers()), dict(with_cp.named_buffers())
    assert not torch.equal(buffers_plain["layer3.0.bn2.running_mean"], before["layer3.0.bn2.running_mean"])
    for name, value in buffers_plain.items():
        torch.testing.assert_close(value, buffers_cp[name], msg=name)
    assert int(buffers_cp["layer4.0.bn3.num_batches_tracked"]) == 1
    assert with_cp.layer4[0].bn3.momentum == plain.layer4[0].bn3.momentum == 0.1


def test_random_init_zeroes_last_norm_of_each_block():
    model = ResNet(depth=18, base_channels=4)
    model.init_weights()
    assert torch.all(model.layer2[1].bn2.weight == 0)
    assert torch.all(model.layer2[1].bn1.weight == 1)


def _save_detector_checkpoint(backbone: ResNet, path, prefix: str) -> None:
    state = {f"{prefix}{k}": v for k, v in backbone.state_dict().items()}
    state[f"{prefix}fc.weight"] = torch.zeros(10, 32)
    state["img_neck.lateral_convs.0.conv.weight"] = torch.zeros(1)
    save_checkpoint({"state_dict": state, "meta": {"epoch": 1}}, path)


@pytest.mark.parametrize("prefix", ["img_backbone.", "backbone.", ""])
def test_init_from_local_file_round_trips(tmp_path, prefix):
    source = ResNet(depth=18, base_channels=4)
    source.init_weights()
    for p in source.parameters():
        p.data.normal_()
    path = tmp_path / "detector.pth"
    _save_detector_checkpoint(source, path, prefix)
    if not prefix:
        state = torch.load(path, weights_only=True)["state_dict"]
        del state["img_neck.lateral_convs.0.conv.weight"]
        save_checkpoint(state, path)
    target = MODELS.build(dict(type="ResNet", depth=18, base_channels=4,
                               init_cfg=dict(type="Pretrained", checkpoint=str(path))))
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_init_cfg_prefix_selects_keys(tmp_path):
    source = ResNet(depth=18, base_channels=4, num_stages=3, out_indices=(2,))
    path = tmp_path / "coco.pth"
    _save_detector_checkpoint(ResNet(depth=18, base_channels=4), path, "backbone.")
    target = ResNet(depth=18, base_channels=4, num_stages=3, out_indices=(2,),
                    init_cfg=dict(type="Pretrained", checkpoint=str(path), prefix="backbone."))
    target.init_weights()
    assert not hasattr(target, "layer4")
    assert set(target.state_dict()) == set(source.state_dict())


def test_init_from_wrong_depth_lists_mismatches(tmp_path):
    path = tmp_path / "r34.pth"
    save_checkpoint(ResNet(depth=34, base_channels=4).state_dict(), path)
    model = ResNet(depth=18, base_channels=4, pretrained=str(path))
    with pytest.raises(CheckpointError, match="unexpected keys"):
        model.init_weights()


def test_constructor_does_no_io(tmp_path):
    ResNet(depth=18, base_channels=4, pretrained=str(tmp_path / "absent.pth"))


@pytest.mark.parametrize(
    "option, match",
    [(dict(dcn=dict(type="DCNv2")), "dcn"), (dict(deep_stem=True), "deep_stem"),
     (dict(plugins=[dict(cfg=None)]), "plugins"), (dict(depth=20), "depth"),
     (dict(out_indices=(4,)), "out_indices"), (dict(norm_cfg=dict(type="LN")), "norm_cfg"),
     (dict(init_cfg=dict(type="Pretrained", checkpont="x")), "checkpoint")],
)
def test_unsupported_options_raise_clearly(option, match):
    args = dict(depth=18) | option
    with pytest.raises(ValueError, match=match):
        ResNet(**args)


def test_config_typo_raises():
    with pytest.raises(TypeError, match="with_cpp"):
        MODELS.build(dict(type="ResNet", depth=18, with_cpp=True))


def test_checkpointed_blocks_backward_twice_with_a_kept_graph():
    """retain_graph recomputes each checkpointed block once per backward (gradient-share tools
    take one gradient per loss term): the BN-freezing recompute context must be re-enterable,
    and the running statistics still count the batch once."""
    torch.manual_seed(0)
    model = ResNet(depth=18, out_indices=(3,), norm_eval=False, with_cp=True).train()
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    out = model(x)[0]
    first = torch.autograd.grad(out.sum(), x, retain_graph=True)[0]
    second = torch.autograd.grad(out.pow(2).mean(), x)[0]
    assert torch.isfinite(first).all() and torch.isfinite(second).all()
    assert int(model.bn1.num_batches_tracked) == 1
    assert all(int(m.num_batches_tracked) == 1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
