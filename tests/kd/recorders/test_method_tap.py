"""MethodTap: a method of one module instance, wrapped while tapped and restored exactly."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.kd.recorders import MethodTap, TapManager


class Head(nn.Module):
    """A head that calls ``codes`` once per layer and ``pair`` once per forward."""

    def __init__(self, layers: int = 3) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Linear(4, 4) for _ in range(layers))
        self.register_buffer("scale", torch.full((4,), 2.0))

    def codes(self, layer: int, feats: torch.Tensor) -> torch.Tensor:
        return self.branches[layer](feats) * self.scale

    def pair(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return x + 1, {"double": 2 * x}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.codes(layer, x) for layer in range(len(self.branches))]
        return self.pair(torch.stack(outs).sum(0))[0]


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def _manager(model: nn.Module, **taps: dict) -> TapManager:
    specs = {name: dict(model="student", **spec) for name, spec in taps.items()}
    return TapManager({"student": model}, specs)


def test_records_each_call_and_selects_by_call_and_index() -> None:
    torch.manual_seed(0)
    model, x = Model(), torch.randn(2, 4)
    manager = _manager(model, **{f"layer{i}": dict(path="head.codes", call=i) for i in range(3)},
                       plus=dict(path="head.pair", index=0), double=dict(path="head.pair", index=1))
    assert isinstance(manager.tap("layer0"), MethodTap)
    with manager.recording():
        out = model(x)
        layers = [manager.pop(f"layer{i}") for i in range(3)]
        assert manager.tap("layer0").calls_seen == 3
        torch.testing.assert_close(manager.pop("plus"), out)
        double = manager.pop("double")
    for i, value in enumerate(layers):
        torch.testing.assert_close(value, model.head.branches[i](x) * 2)
    torch.testing.assert_close(double["double"], 2 * (out - 1))


def test_remove_restores_the_class_method_exactly() -> None:
    torch.manual_seed(0)
    model, x = Model(), torch.randn(2, 4)
    before = model(x)
    manager = _manager(model, c=dict(path="head.codes", call=1))
    assert "codes" in model.head.__dict__ and "codes" not in Head().__dict__  # this instance only
    with manager.recording():
        torch.testing.assert_close(model(x), before)
    manager.remove()
    assert "codes" not in model.head.__dict__
    assert model.head.codes.__func__ is Head.codes
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)


def test_two_taps_on_one_method_unwind_in_reverse_order() -> None:
    model, x = Model(), torch.randn(2, 4)
    first = _manager(model, a=dict(path="head.codes"))
    second = _manager(model, b=dict(path="head.codes", call=2))
    with first.recording(), second.recording():
        model(x)
        assert first.tap("a").calls_seen == second.tap("b").calls_seen == 3
        torch.testing.assert_close(first.pop("a"), model.head.branches[0](x) * 2)
        torch.testing.assert_close(second.pop("b"), model.head.branches[2](x) * 2)
    with pytest.raises(RuntimeError, match="reverse install order"):
        first.tap("a").remove()
    second.remove()
    assert model.head.__dict__["codes"].tap is first.tap("a")
    first.remove()
    assert "codes" not in model.head.__dict__
    both = _manager(model, a=dict(path="head.codes"), b=dict(path="head.codes", call=1))
    both.remove()
    assert "codes" not in model.head.__dict__


def test_wrong_method_name_fails_with_close_matches() -> None:
    model = Model()
    with pytest.raises(KeyError, match=r"has no module 'head.code' nor a method.*'head.codes'"):
        _manager(model, good=dict(path="head.pair"), bad=dict(path="head.code"))
    assert "pair" not in model.head.__dict__  # nothing installed
    with pytest.raises(KeyError, match="'head.branches'"):
        _manager(model, bad=dict(path="head.branchez"))
    with pytest.raises(KeyError, match="has no module 'head.forward'"):
        _manager(model, bad=dict(path="head.forward"))  # nn.Module's own methods are not tapped


def test_input_of_a_method_is_refused() -> None:
    model = Model()
    with pytest.raises(ValueError, match=r"'head.codes' is a method.*io='output'"):
        _manager(model, ok=dict(path="head"), bad=dict(path="head.codes", io="input"))
    assert not model.head._forward_hooks and "codes" not in model.head.__dict__
    with pytest.raises(ValueError, match="io='output'"):
        MethodTap("t", model.head, "codes", "head.codes", io="input")
    with pytest.raises(AttributeError, match="no method 'missing'"):
        MethodTap("t", model.head, "missing", "head.missing")


def test_state_dict_is_unchanged_with_taps_installed() -> None:
    model = Model()
    keys = list(model.state_dict())
    manager = _manager(model, c=dict(path="head.codes", call=1), p=dict(path="head.pair"))
    with manager.recording():
        model(torch.randn(2, 4))
        state = model.state_dict()
    assert list(state) == keys
    fresh = Model()
    fresh.load_state_dict(state, strict=True)
    model.load_state_dict(fresh.state_dict(), strict=True)
    assert list(model.state_dict()) == keys and len(list(model.modules())) == len(list(fresh.modules()))


def test_values_are_recorded_only_inside_the_step() -> None:
    model, x = Model(), torch.randn(2, 4)
    manager = _manager(model, c=dict(path="head.codes"))
    model(x)
    tap = manager.tap("c")
    assert tap.calls_seen == 0
    with manager.recording():
        model(x)
    assert tap.calls_seen == 0 and not tap.is_open
    with manager.recording():
        with pytest.raises(RuntimeError, match=r"method 'head.codes' ran 0 time\(s\)"):
            manager.pop("c")


def test_deepcopy_and_pickle_with_taps_installed() -> None:
    torch.manual_seed(0)
    model, x = Model(), torch.randn(2, 4)
    manager = _manager(model, c=dict(path="head.codes"))
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        with torch.no_grad():
            clone.head.branches[0].weight.zero_()
        with manager.recording():
            clone(x)
            assert manager.tap("c").calls_seen == 0  # the copy records into its own, closed tap
        torch.testing.assert_close(clone.head.codes(0, x), clone.head.branches[0].bias * 2 + 0 * x)
    manager.remove()
    assert "codes" not in model.head.__dict__
