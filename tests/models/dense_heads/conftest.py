"""Fixtures of the head tests."""
from __future__ import annotations

from typing import Callable, Iterator

import pytest
from torch import nn


@pytest.fixture
def record_calls() -> Iterator[Callable[[nn.Module, str], list]]:
    """``record_calls(module, name)`` returns a list that receives ``(args, output)`` of every
    later call of ``module.<name>``; the method is restored after the test."""
    patched: list[tuple[nn.Module, str]] = []

    def record(module: nn.Module, name: str) -> list:
        method, calls = getattr(module, name), []

        def recorded(*args):
            output = method(*args)
            calls.append((args, output))
            return output

        setattr(module, name, recorded)
        patched.append((module, name))
        return calls

    yield record
    for module, name in patched:
        delattr(module, name)
