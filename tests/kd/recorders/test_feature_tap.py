"""FeatureTap: one call of one module, recorded inside a window, handed out once."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.kd.recorders import FeatureTap


class TwoOutputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return x + y, {"prod": x * y}


def test_records_only_the_asked_call_inside_the_window() -> None:
    layer = nn.Linear(3, 3)
    tap = FeatureTap("t", layer, "layer", call=1)
    layer(torch.zeros(1, 3))
    tap.open()
    first, second = layer(torch.ones(1, 3)), layer(2 * torch.ones(1, 3))
    layer(3 * torch.ones(1, 3))
    assert tap.calls_seen == 3
    assert torch.equal(tap.pop(), second) and not torch.equal(second, first)
    with pytest.raises(RuntimeError, match="already handed out"):
        tap.pop()
    tap.close()
    with pytest.raises(RuntimeError, match="not recording"):
        tap.pop()


def test_input_and_index_selection() -> None:
    module = TwoOutputs()
    x, y = torch.full((2,), 2.0), torch.full((2,), 3.0)
    taps = [FeatureTap("in", module, "m", io="input", index=1), FeatureTap("out0", module, "m", index=0),
            FeatureTap("second", module, "m", index=1), FeatureTap("whole_in", module, "m", io="input")]
    for tap in taps:
        tap.open()
    module(x, y)
    assert taps[0].pop() is y and torch.equal(taps[1].pop(), x + y)
    assert torch.equal(taps[2].pop()["prod"], x * y)
    whole = taps[3].pop()
    assert isinstance(whole, tuple) and whole[0] is x and whole[1] is y
    bad = FeatureTap("bad", module, "m", index="missing")
    bad.open()
    with pytest.raises(KeyError, match="index 'missing' not found"):
        module(x, y)


def test_nothing_recorded_names_the_module_and_calls() -> None:
    tap = FeatureTap("t", nn.Identity(), "img_roi_head.cls", call=0)
    tap.open()
    with pytest.raises(RuntimeError, match=r"module 'img_roi_head.cls' ran 0 time\(s\)"):
        tap.pop()


@pytest.mark.parametrize("kwargs, message", [
    (dict(io="weights"), "io must be one of"), (dict(call=-1), "non-negative"), (dict(index=1.5), "index must be"),
])
def test_bad_arguments_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureTap("t", nn.Identity(), "x", **kwargs)


def test_remove_takes_the_hook_off() -> None:
    layer = nn.Linear(2, 2)
    tap = FeatureTap("t", layer, "layer")
    assert len(layer._forward_hooks) == 1
    tap.remove()
    assert len(layer._forward_hooks) == 0
