"""Checkpoint reading, strict loading, mismatch reports, allow-lists and atomic saving."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch import nn

from projects.mmdet3d_plugin.core.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    describe_state_dict_mismatch,
    load_checkpoint,
    numpy_safe_globals,
    read_checkpoint,
    save_checkpoint,
)


class _Net(nn.Module):
    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.head = nn.Linear(hidden, 2)


class Opaque:
    """A custom class: a weights-only unpickler must refuse it unless allow-listed."""

    def __init__(self, value: int) -> None:
        self.value = value


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_strict_round_trip_returns_metadata(tmp_path):
    src = _Net()
    path = save_checkpoint({"state_dict": src.state_dict(), "meta": {"epoch": 3}}, tmp_path / "a" / "net.pth")
    dst = _Net()
    meta = load_checkpoint(dst, path)
    assert meta == {"meta": {"epoch": 3}}
    assert _same(src, dst)
    assert not list(path.parent.glob("*.tmp"))


def test_bare_model_wrapper_and_ddp_prefix(tmp_path):
    src = _Net()
    wrapped = {"model": {f"module.{k}": v for k, v in src.state_dict().items()}}
    path = save_checkpoint(wrapped, tmp_path / "ddp.pth")
    dst = _Net()
    assert load_checkpoint(dst, path) == {}
    assert _same(src, dst)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(_Net(), tmp_path / "nope.pth")


def test_mapped_read_gives_the_same_entries(tmp_path):
    state = _Net().state_dict()
    path = save_checkpoint({"state_dict": state, "global_step": 3}, tmp_path / "full.pth")
    mapped = read_checkpoint(path, mmap=True)
    assert mapped["global_step"] == 3
    assert all(torch.equal(mapped["state_dict"][k], v) for k, v in state.items())


@pytest.mark.parametrize("keep_fraction", [0.5, 0.0])
def test_truncated_file_is_reported(tmp_path, keep_fraction):
    path = save_checkpoint(_Net().state_dict(), tmp_path / "full.pth")
    data = path.read_bytes()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(data[: int(len(data) * keep_fraction)] or b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken\.pth.*truncated"):
        load_checkpoint(_Net(), broken)


def test_strict_mismatch_lists_keys_and_close_matches(tmp_path):
    state = _Net().state_dict()
    state["encoder.weigth"] = state.pop("encoder.weight")
    state["head.weight"] = torch.zeros(5, 4)
    state["extra.bias"] = torch.zeros(1)
    path = save_checkpoint(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(_Net(), path)
    message = str(info.value)
    assert "bad.pth" in message
    assert "missing keys (1)" in message and "encoder.weight" in message
    assert "close matches in the file: ['encoder.weigth']" in message
    assert "unexpected keys (2)" in message and "extra.bias" in message
    assert "shape mismatches (1)" in message and "head.weight: expected [2, 4], got [5, 4]" in message


def test_non_strict_loads_what_matches(tmp_path):
    src = _Net()
    state = src.state_dict()
    state["head.weight"] = torch.zeros(5, 4)
    path = save_checkpoint(state, tmp_path / "partial.pth")
    dst = _Net()
    before = dst.head.weight.clone()
    load_checkpoint(dst, path, strict=False)
    assert torch.equal(dst.encoder.weight, src.encoder.weight)
    assert torch.equal(dst.head.weight, before)


def test_describe_mismatch_limits_lists_and_accepts_shapes():
    expected = {f"layer.{i}.weight": torch.Size([2]) for i in range(15)}
    got = {"layer.0.weight": torch.zeros(3)}
    report = describe_state_dict_mismatch(expected, got)
    assert "missing keys (14)" in report and "... and 4 more" in report
    assert "layer.0.weight: expected [2], got [3]" in report
    assert describe_state_dict_mismatch({"a": torch.zeros(2)}, {"a": torch.ones(2)}) == ""


def test_missing_batchnorm_counter_is_accepted(tmp_path):
    src = _Net()
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = save_checkpoint(state, tmp_path / "old.pth")
    dst = _Net()
    load_checkpoint(dst, path)
    assert torch.equal(dst.norm.running_var, src.norm.running_var)


def test_weights_only_refuses_custom_objects_unless_allowed(tmp_path):
    src = _Net()
    path = save_checkpoint({"state_dict": src.state_dict(), "meta": {"owner": Opaque(7)}}, tmp_path / "obj.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"Opaque.*allowed_globals"):
        load_checkpoint(_Net(), path)
    meta = load_checkpoint(_Net(), path, allowed_globals=(Opaque,))
    assert meta["meta"]["owner"].value == 7


def test_numpy_meta_needs_the_numpy_allow_list(tmp_path):
    meta = {"epoch": np.int64(4), "lr": np.float32(0.1), "hist": np.arange(3.0)}
    path = save_checkpoint({"state_dict": _Net().state_dict(), "meta": meta}, tmp_path / "mmcv.pth")
    with pytest.raises(UnsafeCheckpointError, match="numpy"):
        load_checkpoint(_Net(), path)
    loaded = load_checkpoint(_Net(), path, allowed_globals=numpy_safe_globals())["meta"]
    assert loaded["epoch"] == 4 and np.array_equal(loaded["hist"], np.arange(3.0))


def test_save_is_atomic_and_replaces(tmp_path):
    path = save_checkpoint({"x": torch.ones(2)}, tmp_path / "c.pth")
    save_checkpoint({"x": torch.zeros(2)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pth"]


def test_save_failure_leaves_no_file(tmp_path):
    target = tmp_path / "never.pth"
    with pytest.raises(Exception):
        save_checkpoint({"fn": lambda: None}, target)
    assert list(tmp_path.iterdir()) == []


def test_state_dict_with_non_tensors_is_rejected(tmp_path):
    path = save_checkpoint(collections.OrderedDict(a=torch.zeros(1), b=3), tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="not tensors"):
        load_checkpoint(_Net(), path)


def test_disk_full_save_is_reported_as_such(tmp_path, monkeypatch):
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    import os

    from projects.mmdet3d_plugin.core import checkpoint as module

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    real_fdopen = os.fdopen

    def full_disk(fd, mode):
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), mode)

    monkeypatch.setattr(module.os, "fdopen", full_disk)
    path = tmp_path / "iter_8.pth"
    with pytest.raises(CheckpointError, match=r"disk full.*iter_8\.pth.*MiB free"):
        module.save_checkpoint({"w": torch.zeros(100_000)}, path)
    assert list(tmp_path.iterdir()) == []
