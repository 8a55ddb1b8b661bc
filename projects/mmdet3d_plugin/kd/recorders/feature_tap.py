"""FeatureTap: one forward hook that records one input or output of one module call.

The recording window, the call counting and the hand-out are those of
:class:`~.base_tap.TapBase`; this tap feeds it from a forward hook of the module.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .base_tap import TapBase, TapIndex


class FeatureTap(TapBase):
    """Records what a module returns (or receives) on one of its calls in a step.

    Args:
        name: the tap's name (used in messages).
        module: the hooked module.
        path: dotted path of ``module`` inside its model, e.g. ``'img_neck.fpn_convs.0.conv'``
            (used in messages).
        io: ``'output'`` records the return value; ``'input'`` the positional arguments.
        call: which call of the module within a step to record (0 = the first). Modules
            that run several times per step (a shared branch, a layer applied per level)
            are told apart by this index.
        index: picks one element of the recorded value: an ``int`` for a tuple / list, a
            ``str`` for a dict (e.g. ``'all_cls_scores'`` of a head's output). ``None``
            keeps the whole output; for ``io='input'`` it keeps the single positional
            argument, or the tuple of them when the module takes several.
    """

    kind = "module"

    def __init__(self, name: str, module: nn.Module, path: str, io: str = "output",
                 call: int = 0, index: TapIndex = None) -> None:
        super().__init__(name, path, io=io, call=call, index=index)
        self._handle = module.register_forward_hook(self._hook)

    def remove(self) -> None:
        """Remove the hook from the module and drop any recorded value."""
        self.close()
        self._handle.remove()

    def _hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        """Forward hook: hand the call to :meth:`TapBase._record`."""
        self._record(args, output)
