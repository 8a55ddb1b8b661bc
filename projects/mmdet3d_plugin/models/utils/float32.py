"""``force_fp32``: run a function in float32 when the caller is under autocast.

Upstream decorates its heads' ``loss`` methods with mmcv's ``@force_fp32``: target
assignment, matching costs and losses run in float32 even when the rest of the step is
mixed precision. This decorator does the same with ``torch.autocast``: where autocast is on
(CPU or CUDA), it is switched off inside the function and every half / bfloat16 tensor
argument (also inside lists, tuples and dicts) is cast to float32. Without autocast the
function runs unchanged.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, TypeVar

import torch

_F = TypeVar("_F", bound=Callable[..., Any])
_DEVICE_TYPES = ("cpu", "cuda")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def to_float32(value: Any) -> Any:
    """``value`` with every float16 / bfloat16 tensor in it cast to float32 (containers rebuilt)."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in _LOW_PRECISION else value
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(item) for item in value)
    if isinstance(value, dict):
        return {key: to_float32(item) for key, item in value.items()}
    return value


def force_fp32(function: _F) -> _F:
    """Decorate ``function`` to run without autocast, on float32 arguments (see the module doc)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        active = [device for device in _DEVICE_TYPES if torch.is_autocast_enabled(device)]
        if not active:
            return function(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for device in active:
                stack.enter_context(torch.autocast(device_type=device, enabled=False))
            return function(*to_float32(args), **to_float32(kwargs))

    return wrapper  # type: ignore[return-value]
