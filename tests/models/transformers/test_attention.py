"""Attention wrappers: equal to nn.MultiheadAttention (both layouts, masks), keys, maps."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.models.transformers.attention import MultiheadSDPA
from projects.mmdet3d_plugin.registry import MODELS

C, HEADS, B, LQ, LK = 16, 4, 2, 5, 7
TYPES = ["MultiheadAttention", "PETRMultiheadAttention", "PETRMultiheadFlashAttention"]


def _pair(attn_type: str, batch_first: bool):
    torch.manual_seed(0)
    cfg = dict(type=attn_type, embed_dims=C, num_heads=HEADS, batch_first=batch_first)
    ours = MODELS.build(cfg)
    ref = nn.MultiheadAttention(C, HEADS, batch_first=batch_first)
    with torch.no_grad():
        for param in ours.attn.parameters():
            param.normal_()
    ref.load_state_dict(ours.attn.state_dict())
    return ours.eval(), ref.eval()


def _inputs(batch_first: bool):
    shape_q = (B, LQ, C) if batch_first else (LQ, B, C)
    shape_k = (B, LK, C) if batch_first else (LK, B, C)
    return torch.randn(shape_q), torch.randn(shape_k), torch.randn(shape_k)


def test_state_dict_keys_match_nn_multihead_attention():
    ours = MODELS.build(dict(type="PETRMultiheadFlashAttention", embed_dims=C, num_heads=HEADS))
    ref_keys = {f"attn.{k}" for k in nn.MultiheadAttention(C, HEADS).state_dict()}
    assert set(ours.state_dict()) == ref_keys
    assert ours.state_dict()["attn.in_proj_weight"].shape == (3 * C, C)


@pytest.mark.parametrize("attn_type", TYPES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_equals_torch_with_masks_and_positions(attn_type, batch_first):
    ours, ref = _pair(attn_type, batch_first)
    query, key, value = _inputs(batch_first)
    query_pos, key_pos = torch.randn_like(query), torch.randn_like(key)
    attn_mask = torch.rand(LQ, LK) > 0.7
    attn_mask[:, 0] = False  # keep every row attendable
    key_padding_mask = torch.zeros(B, LK, dtype=torch.bool)
    key_padding_mask[1, -3:] = True
    out = ours(query, key, value, query_pos=query_pos, key_pos=key_pos,
               attn_mask=attn_mask, key_padding_mask=key_padding_mask)
    expected = query + ref(query + query_pos, key + key_pos, value, attn_mask=attn_mask,
                           key_padding_mask=key_padding_mask, need_weights=False)[0]
    assert out.shape == query.shape
    assert torch.allclose(out, expected, atol=1e-5)


def test_float_and_per_head_masks():
    ours, ref = _pair("MultiheadAttention", False)
    query, key, value = _inputs(False)
    float_mask = torch.randn(LQ, LK)
    head_mask = torch.rand(B * HEADS, LQ, LK) > 0.7
    head_mask[..., 0] = False
    for mask in (float_mask, head_mask):
        out = ours(query, key, value, attn_mask=mask)
        expected = query + ref(query, key, value, attn_mask=mask, need_weights=False)[0]
        assert torch.allclose(out, expected, atol=1e-5)


def test_defaults_self_attention_and_key_pos_from_query_pos():
    ours, ref = _pair("MultiheadAttention", False)
    query, _, _ = _inputs(False)
    query_pos = torch.randn_like(query)
    identity = torch.randn_like(query)
    out = ours(query, query_pos=query_pos, identity=identity)
    shifted = query + query_pos
    # key defaults to query (plus query_pos), value to the key before positions are added
    expected = identity + ref(shifted, shifted, query, need_weights=False)[0]
    assert torch.allclose(out, expected, atol=1e-5)


def test_missing_key_pos_warns_when_shapes_differ():
    ours, _ = _pair("MultiheadAttention", False)
    query, key, value = _inputs(False)
    with pytest.warns(UserWarning, match="position encoding of key"):
        ours(query, key, value, query_pos=torch.randn_like(query))


@pytest.mark.parametrize("batch_first", [False, True])
def test_attention_map_equals_torch_weights(batch_first):
    ours, ref = _pair("PETRMultiheadAttention", batch_first)
    query, key, value = _inputs(batch_first)
    key_padding_mask = torch.zeros(B, LK, dtype=torch.bool)
    key_padding_mask[0, :2] = True
    out, attn_map = ours.forward_with_attn_map(
        query, key, value, key_padding_mask=key_padding_mask
    )
    ref_out, ref_map = ref(query, key, value, key_padding_mask=key_padding_mask)
    assert attn_map.shape == (B, LQ, LK)
    assert torch.allclose(attn_map, ref_map, atol=1e-6)
    assert torch.allclose(out, query + ref_out, atol=1e-5)
    assert torch.allclose(attn_map.sum(-1), torch.ones(B, LQ), atol=1e-6)


def test_need_weights_flag_exposes_map_to_hooks():
    ours, _ = _pair("PETRMultiheadFlashAttention", False)
    query, key, value = _inputs(False)
    seen = []
    handle = ours.attn.register_forward_hook(lambda module, args, output: seen.append(output[1]))
    plain = ours(query, key, value)
    ours.need_weights = True
    flagged = ours(query, key, value)
    handle.remove()
    assert seen[0] is None and seen[1].shape == (B, LQ, LK)
    assert torch.allclose(plain, flagged, atol=1e-6)


def test_dropout_alias_and_training_only_dropout():
    module = MODELS.build(dict(type="MultiheadAttention", embed_dims=C, num_heads=HEADS, dropout=0.5))
    assert module.attn.attn_drop == 0.5
    assert isinstance(module.dropout_layer, nn.Dropout) and module.dropout_layer.p == 0.5
    query = torch.randn(LQ, B, C)
    module.eval()
    assert torch.equal(module(query), module(query))
    module.train()
    torch.manual_seed(1)
    first = module(query)
    torch.manual_seed(2)
    assert not torch.allclose(first, module(query))


def test_constructor_rejects_unknown_keys_and_bad_heads():
    with pytest.raises(TypeError):
        MODELS.build(dict(type="MultiheadAttention", embed_dims=C, num_heads=HEADS, dropuot=0.1))
    with pytest.raises(ValueError, match="divisible"):
        MultiheadSDPA(10, 4)


def test_gradients_reach_projections():
    ours, _ = _pair("PETRMultiheadFlashAttention", True)
    query, key, value = _inputs(True)
    ours(query, key, value).sum().backward()
    assert ours.attn.in_proj_weight.grad is not None
    assert ours.attn.out_proj.weight.grad.abs().sum() > 0


@pytest.mark.gpu
def test_flash_path_on_cuda_half_matches_sdpa():
    ours, _ = _pair("PETRMultiheadFlashAttention", True)
    ours = ours.to("cuda").half()
    query, key, value = (t.to("cuda").half() for t in _inputs(True))
    flash_out = ours(query, key, value)
    ours.attn.use_flash = False
    assert torch.allclose(flash_out.float(), ours(query, key, value).float(), atol=2e-2)


def test_flash_variant_never_drops_attention_weights_like_upstream():
    from projects.mmdet3d_plugin.models.transformers.attention import PETRMultiheadAttention, PETRMultiheadFlashAttention

    assert PETRMultiheadFlashAttention(16, 2, dropout=0.1).attn.attn_drop == 0.0
    assert PETRMultiheadAttention(16, 2, dropout=0.1).attn.attn_drop == 0.1
