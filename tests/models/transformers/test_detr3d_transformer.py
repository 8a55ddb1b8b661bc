"""Detr3DTransformer / decoder / temporal decoder layer: names, FFN width, masks, checkpointing."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

EMBED = 16
PC_RANGE = torch.tensor([-51.2, -51.2, -5.0, 51.2, 51.2, 3.0])
SHAPES = [(4, 6), (2, 3)]


def _layer_cfg(**overrides) -> dict:
    cfg = dict(
        type="Detr3DTemporalDecoderLayer", batch_first=True, with_cp=False,
        attn_cfgs=[dict(type="MultiheadAttention", embed_dims=EMBED, num_heads=2, dropout=0.0),
                   dict(type="DeformableFeatureAggregationCuda", embed_dims=EMBED, num_groups=2,
                        num_levels=2, num_cams=2, dropout=0.0, num_pts=3)],
        feedforward_channels=2048, ffn_dropout=0.1,
        operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"))
    cfg.update(overrides)
    return cfg


def _transformer(**overrides):
    torch.manual_seed(0)
    model = MODELS.build(dict(type="Detr3DTransformer", decoder=dict(
        type="Detr3DTransformerDecoder", embed_dims=EMBED, num_layers=2,
        transformerlayers=_layer_cfg(**overrides))))
    model.init_weights()
    return model


def _inputs(num_query=5, memory=3):
    gen = torch.Generator().manual_seed(0)
    l2i = torch.eye(4).repeat(1, 2, 1, 1)
    l2i[:, :, :3, :3] = torch.tensor([[0.0, -10.0, 0.0], [0.0, 0.0, -10.0], [1.0, 0.0, 0.0]])
    l2i[:, :, 0, 3] = 24.0
    return dict(
        query=torch.randn(1, num_query, EMBED, generator=gen),
        query_pos=torch.randn(1, num_query, EMBED, generator=gen),
        feat_flatten=torch.randn(2, 30, EMBED, generator=gen), spatial_shapes=SHAPES,
        reference_points=torch.rand(1, num_query, 3, generator=gen) * 0.2 + 0.55,
        pc_range=PC_RANGE, lidar2img=l2i, image_size=(32, 48),
        temp_memory=torch.randn(1, memory, EMBED, generator=gen),
        temp_pos=torch.randn(1, memory, EMBED, generator=gen))


def test_names_and_default_ffn_width_of_published_checkpoints():
    keys = {k: tuple(v.shape) for k, v in _transformer().state_dict().items()}
    prefix = "decoder.layers.1."
    assert keys[prefix + "attentions.0.attn.in_proj_weight"] == (3 * EMBED, EMBED)
    assert keys[prefix + "attentions.1.learnable_fc.weight"] == (9, EMBED)
    # feedforward_channels=2048 in the config does not set the width: 1024, as published.
    assert keys[prefix + "ffns.0.layers.0.0.weight"] == (1024, EMBED)
    assert keys[prefix + "ffns.0.layers.1.weight"] == (EMBED, 1024)
    assert {prefix + f"norms.{i}.weight" for i in range(3)} <= set(keys)


def test_forward_shape_mask_and_memory_keys():
    model = _transformer(ffn_cfgs=dict(type="FFN", feedforward_channels=32)).eval()
    inputs = _inputs()
    with torch.no_grad():
        out = model(**inputs)
        assert out.shape == (2, 1, 5, EMBED)
        # Query 0 may see only itself: other queries and the memory do not change it.
        mask = torch.zeros(5, 8, dtype=torch.bool)
        mask[0, 1:] = True
        masked = model(**inputs, attn_mask=mask)
        changed = dict(inputs, temp_memory=inputs["temp_memory"] + 5.0)
        changed["query"] = inputs["query"].clone()
        changed["query"][:, 1:] += 3.0
        masked_changed = model(**changed, attn_mask=mask)
    assert torch.allclose(masked[:, :, 0], masked_changed[:, :, 0], atol=1e-5)
    assert not torch.allclose(masked[:, :, 1], masked_changed[:, :, 1])


def test_checkpointed_layer_matches_plain_and_backpropagates():
    plain = _transformer(ffn_cfgs=dict(type="FFN", feedforward_channels=32)).train()
    ckpt = _transformer(ffn_cfgs=dict(type="FFN", feedforward_channels=32), with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    inputs = _inputs()
    inputs["feat_flatten"].requires_grad_(True)
    out_plain, out_ckpt = plain(**inputs), ckpt(**inputs)
    assert torch.allclose(out_plain, out_ckpt, atol=1e-6)
    out_ckpt.sum().backward()
    assert inputs["feat_flatten"].grad.abs().sum() > 0


def test_config_errors_raise():
    with pytest.raises(ValueError, match="attn_cfgs has 1"):
        MODELS.build(_layer_cfg(attn_cfgs=[_layer_cfg()["attn_cfgs"][0]]))
    with pytest.raises(ValueError, match="unknown operations"):
        MODELS.build(_layer_cfg(operation_order=("self_attn", "norm", "cross_attn", "nrom", "ffn", "norm")))
    with pytest.raises(TypeError):
        MODELS.build(_layer_cfg(feedforward_channel=2048))
