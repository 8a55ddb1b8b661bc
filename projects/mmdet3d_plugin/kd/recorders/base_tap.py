"""TapBase: the recording window shared by module taps and method taps.

A tap is a plain object (never an ``nn.Module``): what it records lives in a Python
attribute, so it can never reach a state dict or a checkpoint. It records only while it is
*open* (between :meth:`TapBase.open` and :meth:`TapBase.close`, driven by
:class:`~projects.mmdet3d_plugin.kd.recorders.tap_manager.TapManager`), counts the calls of
its target inside that window and keeps the value of call number ``call``. Calls outside
the window are ignored: in particular the re-run of a module by activation checkpointing
(``with_cp``) during the backward pass, which happens after the step closed its window.

Subclasses attach the tap to its target (a forward hook for
:class:`~.feature_tap.FeatureTap`, an instance-level wrapper for
:class:`~.method_tap.MethodTap`), feed every call to :meth:`TapBase._record` and take the
attachment off again in :meth:`TapBase.remove`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

TAP_IO = ("output", "input")

TapIndex = Optional[Union[int, str]]


class _Nothing:
    """Marks a tap that holds no value (nothing recorded yet, or already handed out)."""

    def __repr__(self) -> str:
        return "<nothing>"


_NOTHING = _Nothing()


def check_tap_arguments(name: str, io: str, call: int, index: TapIndex) -> None:
    """Raise ValueError for an ``io``, ``call`` or ``index`` a tap cannot take."""
    if io not in TAP_IO:
        raise ValueError(f"tap '{name}': io must be one of {TAP_IO}, got {io!r}")
    if isinstance(call, bool) or not isinstance(call, int) or call < 0:
        raise ValueError(f"tap '{name}': call must be a non-negative int, got {call!r}")
    if index is not None and (isinstance(index, bool) or not isinstance(index, (int, str))):
        raise ValueError(f"tap '{name}': index must be None, an int or a str, got {index!r}")


class TapBase:
    """Records one input or output of one call of its target in a step.

    Args:
        name: the tap's name (used in messages).
        path: dotted path of the target inside its model (used in messages).
        io: ``'output'`` records the return value; ``'input'`` the positional arguments.
        call: which call of the target within a step to record (0 = the first).
        index: picks one element of the recorded value: an ``int`` for a tuple / list, a
            ``str`` for a dict. ``None`` keeps the whole value; for ``io='input'`` it keeps
            the single positional argument, or the tuple of them when there are several.
    """

    #: What the target is called in messages (``'module'`` or ``'method'``).
    kind = "target"

    def __init__(self, name: str, path: str, io: str = "output", call: int = 0,
                 index: TapIndex = None) -> None:
        check_tap_arguments(name, io, call, index)
        self.name = name
        self.path = path
        self.io = io
        self.call = call
        self.index = index
        self._open = False
        self._calls = 0
        self._value: Any = _NOTHING
        self._handed_out = False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, path={self.path!r}, io={self.io!r}, "
                f"call={self.call}, index={self.index!r})")

    @property
    def calls_seen(self) -> int:
        """Calls of the target counted since the window opened."""
        return self._calls

    @property
    def is_open(self) -> bool:
        """Whether the tap is recording."""
        return self._open

    def open(self) -> None:
        """Start a recording window: forget any previous value and count calls from 0."""
        self._open = True
        self._calls = 0
        self._value = _NOTHING
        self._handed_out = False

    def close(self) -> None:
        """End the window and drop whatever was recorded and not handed out."""
        self._open = False
        self._calls = 0
        self._value = _NOTHING
        self._handed_out = False

    def pop(self) -> Any:
        """Hand out the recorded value once; the tap keeps no reference to it.

        Raises:
            RuntimeError: the window is closed, the value was already handed out, the
                target did not run ``call + 1`` times in this window, or it recorded None.
        """
        if not self._open:
            raise RuntimeError(f"tap '{self.name}' ({self.path}) is not recording; pop it inside "
                               "TapManager.recording()")
        if self._handed_out:
            raise RuntimeError(f"tap '{self.name}' ({self.path}) was already handed out in this step; "
                               "each recorded value is given out once")
        if self._value is _NOTHING:
            raise RuntimeError(
                f"tap '{self.name}' recorded nothing: {self.kind} '{self.path}' ran {self._calls} "
                f"time(s) in this step, call index {self.call} was asked for (does the {self.kind} "
                "run in this mode, e.g. a 2D head that runs only in training?)")
        if self._value is None:
            raise RuntimeError(
                f"tap '{self.name}' recorded None from {self.kind} '{self.path}' ({self.io}, index "
                f"{self.index!r}): it returns nothing there in this mode (an attention map is "
                "returned only when the tap sets need_weights=True)")
        value, self._value, self._handed_out = self._value, _NOTHING, True
        return value

    def remove(self) -> None:
        """Detach the tap from its target and drop any recorded value."""
        raise NotImplementedError

    def _record(self, args: tuple, output: Any) -> None:
        """Count one call of the target; keep the selected value of call number ``self.call``."""
        if not self._open:
            return
        number = self._calls
        self._calls += 1
        if number == self.call:
            self._value = self._select(args if self.io == "input" else output)

    def _select(self, value: Any) -> Any:
        """The element named by ``index`` (see the class doc)."""
        if self.index is None:
            if self.io == "input" and isinstance(value, tuple) and len(value) == 1:
                return value[0]
            return value
        if isinstance(self.index, str):
            if not isinstance(value, Mapping) or self.index not in value:
                keys = sorted(value) if isinstance(value, Mapping) else type(value).__name__
                raise KeyError(f"tap '{self.name}' ({self.path}, {self.io}): index {self.index!r} "
                               f"not found; the {self.io} has keys {keys}")
            return value[self.index]
        if not isinstance(value, Sequence) or not -len(value) <= self.index < len(value):
            size = len(value) if isinstance(value, Sequence) else type(value).__name__
            raise IndexError(f"tap '{self.name}' ({self.path}, {self.io}): index {self.index} is out "
                             f"of range for a {self.io} of {size} element(s)")
        return value[self.index]
