"""Atomic checkpoint writes and clear errors for unreadable files."""
from __future__ import annotations

import pytest
import torch

from projects.mmdet3d_plugin.core.checkpoint import CheckpointError
from projects.mmdet3d_plugin.engine.checkpoint_io import AtomicCheckpointIO


def test_round_trip_and_no_temporary_left(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "sub" / "latest.pth"
    io.save_checkpoint({"state_dict": {"w": torch.arange(3.0)}, "global_step": 7}, path)
    loaded = io.load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(3.0)) and loaded["global_step"] == 7
    assert [p.name for p in path.parent.iterdir()] == ["latest.pth"]


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "latest.pth"
    io.save_checkpoint({"v": torch.ones(1)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        io.save_checkpoint({"v": Unpicklable()}, path)
    assert torch.equal(io.load_checkpoint(path)["v"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pth"]


def test_truncated_checkpoint_is_named(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "latest.pth"
    io.save_checkpoint({"v": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated"):
        io.load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "nope.pth")


def test_save_fragments_match_only_the_temporary_files_of_save_checkpoint(tmp_path):
    from projects.mmdet3d_plugin.engine.checkpoint_io import save_fragments

    fragments = [tmp_path / ".iter_4.pth.k2j4x9_a.tmp", tmp_path / ".latest.pth.abcdefgh.tmp"]
    others = [tmp_path / "notes.tmp", tmp_path / ".other.pth.tmp", tmp_path / ".iter_4.pth.short.tmp",
              tmp_path / ".iter_4.ckpt.abcdefgh.tmp"]
    for path in fragments + others:
        path.write_bytes(b"partial")
    assert save_fragments(tmp_path, ".pth") == sorted(fragments)
    assert save_fragments(tmp_path / "absent", ".pth") == []
