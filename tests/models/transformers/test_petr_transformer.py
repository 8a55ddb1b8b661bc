"""The temporal decoder: mmcv key names, memory keys in self-attention, masks, checkpointing."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.registry import MODELS

DIMS = 32
OPS = ('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')


def _transformer(num_layers: int = 2, with_cp: bool = False, dropout: float = 0.0):
    layer = dict(type='PETRTemporalDecoderLayer', attn_cfgs=[
        dict(type='MultiheadAttention', embed_dims=DIMS, num_heads=4, dropout=dropout),
        dict(type='PETRMultiheadFlashAttention', embed_dims=DIMS, num_heads=4, dropout=dropout)],
        feedforward_channels=64, ffn_dropout=dropout, with_cp=with_cp, operation_order=OPS)
    return MODELS.build(dict(type='PETRTemporalTransformer', decoder=dict(
        type='PETRTransformerDecoder', return_intermediate=True, num_layers=num_layers,
        transformerlayers=layer)))


def _inputs(batch: int = 2, queries: int = 5, tokens: int = 7, memory: int = 3):
    torch.manual_seed(0)
    return dict(memory=torch.randn(batch, tokens, DIMS), tgt=torch.randn(batch, queries, DIMS),
                query_pos=torch.randn(batch, queries, DIMS), pos_embed=torch.randn(batch, tokens, DIMS),
                attn_mask=None, temp_memory=torch.randn(batch, memory, DIMS),
                temp_pos=torch.randn(batch, memory, DIMS))


def test_state_dict_names_follow_mmcv_and_ffn_width_from_legacy_key() -> None:
    state = _transformer().state_dict()
    assert state['decoder.layers.1.attentions.0.attn.in_proj_weight'].shape == (3 * DIMS, DIMS)
    assert state['decoder.layers.0.attentions.1.attn.out_proj.weight'].shape == (DIMS, DIMS)
    assert state['decoder.layers.0.ffns.0.layers.0.0.weight'].shape == (64, DIMS)
    assert state['decoder.layers.0.ffns.0.layers.1.weight'].shape == (DIMS, 64)
    assert {f'decoder.layers.0.norms.{i}.weight' for i in range(3)} <= set(state)
    assert 'decoder.post_norm.weight' in state


def test_outputs_every_layer_and_attends_to_memory() -> None:
    model = _transformer().eval()
    inputs = _inputs()
    out = model(**inputs)
    assert out.shape == (2, 2, 5, DIMS)
    assert torch.allclose(out.mean(-1), torch.zeros(2, 2, 5), atol=1e-5)  # post-norm LN on every layer
    changed = dict(inputs, temp_memory=inputs['temp_memory'] + 1.0)
    assert not torch.allclose(model(**changed), out)
    without = dict(inputs, temp_memory=None, temp_pos=None)
    assert model(**without).shape == out.shape


def test_masked_queries_cannot_influence_the_others() -> None:
    model = _transformer().eval()
    inputs = _inputs()
    mask = torch.zeros(5, 5 + 3, dtype=torch.bool)
    mask[2:, :2] = True  # queries 2.. cannot see queries 0 and 1
    out = model(**dict(inputs, attn_mask=mask))
    tgt = inputs['tgt'].clone()
    tgt[:, :2] += 5.0
    out2 = model(**dict(inputs, attn_mask=mask, tgt=tgt))
    assert torch.allclose(out[:, :, 2:], out2[:, :, 2:], atol=1e-5)
    assert not torch.allclose(out[:, :, :2], out2[:, :, :2])


def test_checkpointing_matches_plain_forward_and_backward() -> None:
    plain, ckpt = _transformer(with_cp=False), _transformer(with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.train()
    ckpt.train()
    inputs = _inputs()
    out_plain, out_ckpt = plain(**inputs), ckpt(**inputs)
    assert torch.allclose(out_plain, out_ckpt, atol=1e-6)
    out_ckpt.sum().backward()
    grad = ckpt.decoder.layers[0].attentions[0].attn.in_proj_weight.grad
    assert grad is not None and torch.isfinite(grad).all()


def test_bad_configs_raise() -> None:
    with pytest.raises(ValueError, match="operation_order"):
        MODELS.build(dict(type='PETRTemporalDecoderLayer', attn_cfgs=dict(
            type='MultiheadAttention', embed_dims=DIMS, num_heads=4), operation_order=('self_attn', 'nrom')))
    with pytest.raises(ValueError, match="attn_cfgs"):
        MODELS.build(dict(type='PETRTemporalDecoderLayer', attn_cfgs=[dict(
            type='MultiheadAttention', embed_dims=DIMS, num_heads=4)], operation_order=OPS))
    with pytest.raises(TypeError):
        MODELS.build(dict(type='PETRTemporalTransformer', decoder=dict(
            type='PETRTransformerDecoder', num_layers=1, transformerlayers=dict(
                type='PETRTemporalDecoderLayer', attn_cfgs=dict(
                    type='MultiheadAttention', embed_dims=DIMS, num_heads=4),
                operation_order=OPS)), encoderr=None))
