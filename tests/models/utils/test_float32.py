"""force_fp32: float32 arguments and no autocast inside, only when the caller autocasts."""
from __future__ import annotations

import torch

from projects.mmdet3d_plugin.models.utils.float32 import force_fp32, to_float32


@force_fp32
def _inspect(x, nested, flag=None):
    product = x @ x.T  # a matmul autocasts to bf16 when autocast is on
    return x, nested, product.dtype, torch.is_autocast_enabled("cpu"), flag


def test_under_autocast_the_function_runs_in_float32() -> None:
    x = torch.ones(2, 3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        out_x, nested, product, enabled, flag = _inspect(x, {"a": [x, torch.arange(3)]}, flag="kept")
        assert torch.is_autocast_enabled("cpu")  # restored after the call
    assert out_x.dtype == torch.float32 and product == torch.float32 and not enabled and flag == "kept"
    assert nested["a"][0].dtype == torch.float32 and nested["a"][1].dtype == torch.int64


def test_without_autocast_arguments_pass_through_unchanged() -> None:
    x = torch.ones(2, 3, dtype=torch.bfloat16)
    out_x, _, product, enabled, _ = _inspect(x, {})
    assert out_x is x and product == torch.bfloat16 and not enabled
    assert to_float32((x, [x]))[1][0].dtype == torch.float32
