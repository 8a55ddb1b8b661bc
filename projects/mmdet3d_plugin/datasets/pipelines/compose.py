"""Sequential composition of pipeline steps."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...registry import TRANSFORMS

Transform = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@TRANSFORMS.register_module()
class Compose:
    """Run transforms in order; a step returning ``None`` (sample rejected) stops the chain.

    Args:
        transforms: config dicts (built with ``TRANSFORMS.build``) or callables.
    """

    def __init__(self, transforms: Sequence[Mapping[str, Any] | Transform]) -> None:
        if isinstance(transforms, (Mapping, str)):
            raise TypeError(f"transforms must be a list of configs or callables, got {transforms!r}")
        self.transforms: list[Transform] = []
        for i, step in enumerate(transforms):
            if isinstance(step, Mapping):
                self.transforms.append(TRANSFORMS.build(dict(step)))
            elif callable(step):
                self.transforms.append(step)
            else:
                raise TypeError(f"pipeline step {i} must be a config dict or a callable, got {step!r}")

    def __call__(self, results: dict[str, Any]) -> dict[str, Any] | None:
        for step in self.transforms:
            results = step(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        steps = "".join(f"\n    {step!r}," for step in self.transforms)
        return f"{type(self).__name__}([{steps}\n])"
