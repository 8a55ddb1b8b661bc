"""The interleaved latency helper: order and counts only, nothing is timed."""
from __future__ import annotations

import pytest

from harmodistill_tools.latency import interleaved_latency, round_robin_order


def test_round_robin_rotates_the_order() -> None:
    names = ["a", "b", "c"]
    orders = [round_robin_order(names, frame) for frame in range(6)]
    assert orders[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]] and orders[3:] == orders[:3]
    for position in range(3):  # every model runs in every position equally often
        assert sorted(order[position] for order in orders) == ["a", "a", "b", "b", "c", "c"]
    with pytest.raises(ValueError, match="at least one"):
        round_robin_order([], 0)


def test_models_take_turns_frame_by_frame_with_equal_timed_frames() -> None:
    calls: list[tuple[str, int]] = []
    syncs: list[int] = []
    runs = {name: (lambda frame, name=name: calls.append((name, frame))) for name in ("teacher", "distilled", "plain")}
    seconds = interleaved_latency(runs, frames=4, warmup=2, sync=lambda: syncs.append(1))
    assert [frame for _, frame in calls] == [frame for frame in range(6) for _ in range(3)]  # frame by frame
    for frame in range(6):
        assert [name for name, f in calls if f == frame] == round_robin_order(list(runs), frame)
    for name in runs:  # each model streams its own frames in order, all of them
        assert [f for n, f in calls if n == name] == list(range(6))
    assert {name: len(values) for name, values in seconds.items()} == dict.fromkeys(runs, 4)
    assert all(value >= 0 for values in seconds.values() for value in values)
    assert len(syncs) == 2 * len(calls)  # the device is synchronised around every timed call


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="frames >= 1"):
        interleaved_latency({"a": lambda frame: None}, frames=0, warmup=0, sync=lambda: None)
