"""TapManager: resolves paths, records one step, ignores checkpoint recomputation, removes hooks."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from projects.mmdet3d_plugin.kd.recorders import TapManager


class Shared(nn.Module):
    """One block applied three times per forward, the middle run under activation checkpointing."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        x = checkpoint(self.block, x, use_reentrant=False)
        return self.head(self.block(x))


def _manager(model: nn.Module, **spec) -> TapManager:
    return TapManager({"student": model}, {"b": dict(model="student", path="block", **spec)})


def test_call_index_on_a_module_run_several_times() -> None:
    torch.manual_seed(0)
    model, x = Shared(), torch.randn(2, 4)
    manager = TapManager({"student": model}, {f"call{i}": dict(model="student", path="block", call=i)
                                              for i in range(3)})
    with manager.recording():
        model(x)
        values = [manager.pop(f"call{i}") for i in range(3)]
    expected = model.block(x)
    torch.testing.assert_close(values[0], expected)
    torch.testing.assert_close(values[1], model.block(expected))
    assert manager.tap("call2").calls_seen == 0


def test_checkpoint_recomputation_during_backward_is_ignored_and_gradients_flow() -> None:
    torch.manual_seed(0)
    model = Shared()
    manager = TapManager({"student": model}, {"b": dict(model="student", path="block.0", call=1)})
    fired = []
    model.block[0].register_forward_hook(lambda *_: fired.append(manager.is_recording))
    keys = list(model.state_dict())
    with manager.recording():
        out = model(torch.randn(2, 4))
        recorded = manager.pop("b")
    assert recorded.requires_grad
    (out.sum() + recorded.pow(2).sum()).backward()
    assert fired == [True, True, True, False]  # the last run is the recomputation in backward
    assert manager.tap("b").calls_seen == 0
    assert model.block[0].weight.grad.abs().sum() > 0
    assert list(model.state_dict()) == keys and not list(model.buffers())


def test_values_are_dropped_when_the_step_ends() -> None:
    model = Shared()
    manager = _manager(model)
    with manager.recording():
        model(torch.randn(2, 4))
    assert manager.tap("b").calls_seen == 0
    with manager.recording():
        with pytest.raises(RuntimeError, match="ran 0 time"):
            manager.pop("b")
    with manager.recording(), pytest.raises(RuntimeError, match="cannot nest"):
        with manager.recording():
            pass


def test_paths_are_checked_before_any_hook_is_registered() -> None:
    model = Shared()
    taps = {"good": dict(model="student", path="head"), "bad": dict(model="student", path="blocks")}
    with pytest.raises(KeyError, match=r"has no module 'blocks'.*'block'"):
        TapManager({"student": model}, taps)
    assert not model.head._forward_hooks
    with pytest.raises(KeyError, match="needs 'path'"):
        TapManager({"student": model}, {"x": dict(model="student")})
    with pytest.raises(KeyError, match="no tap named 'bb'.*close matches"):
        _manager(model).tap("bb")


def test_remove_takes_every_hook_off() -> None:
    model = Shared()
    manager = TapManager({"student": model}, {"b": dict(model="student", path="block"),
                                              "h": dict(model="student", path="head", io="input")})
    assert len(manager) == 2 and manager.names == ("b", "h")
    manager.remove()
    assert not model.block._forward_hooks and not model.head._forward_hooks and len(manager) == 0
    with pytest.raises(RuntimeError, match="removed"):
        with manager.recording():
            pass
