"""MethodTap: records what a method of one module instance returns (like mmrazor's
``MethodOutputsRecorder``), so models need no parameter-free probe modules for the distiller.

The tap wraps the bound method on that instance only: a :class:`TappedMethod` is put in the
instance ``__dict__``, where it shadows the class's function for this instance and no
other. It calls what it shadows (the class's function, or a wrapper installed before it) and
hands every call to :meth:`~.base_tap.TapBase._record`. :meth:`MethodTap.remove` puts back
exactly what was there: it deletes the instance attribute (or restores the wrapper it
stacked on), so several taps on one method unwind when removed in reverse install order.

A wrapped method is no module, parameter or buffer: it never reaches a state dict. A model
with method taps installed deep-copies and pickles like one with forward hooks: the copy
carries a copy of the wrapper that calls the copy's own method and records into a copied,
closed tap that no manager opens.
"""
from __future__ import annotations

import inspect
import types
from typing import Any, Callable, Optional

from torch import nn

from .base_tap import TapBase, TapIndex


def method_names(module: nn.Module) -> list[str]:
    """The methods of ``module`` a :class:`MethodTap` can wrap: plain functions of its class
    (and bases) that ``nn.Module`` itself does not define (so not ``forward``, ``state_dict``,
    ...), dunder names excluded."""
    names = []
    for name in dir(type(module)):
        if name.startswith("__") or hasattr(nn.Module, name):
            continue
        if isinstance(inspect.getattr_static(type(module), name), types.FunctionType):
            names.append(name)
    return names


def check_method_io(name: str, path: str, io: str) -> None:
    """Raise ValueError unless ``io`` is ``'output'`` (all a method tap records)."""
    if io != "output":
        raise ValueError(f"tap '{name}': '{path}' is a method; a method tap records its output "
                         f"only (io='output'), got io={io!r}; to record its inputs, tap the "
                         "module that receives them")


class TappedMethod:
    """The callable a :class:`MethodTap` puts in the instance ``__dict__``.

    Args:
        tap: the tap each call is reported to.
        module: the instance whose method is wrapped.
        function: the class's function (called as ``function(module, *args)``).
        previous: what the instance ``__dict__`` held under the method's name before (a
            wrapper of an earlier tap), called instead of ``function`` when given.
    """

    def __init__(self, tap: "MethodTap", module: nn.Module, function: Callable[..., Any],
                 previous: Optional[Callable[..., Any]]) -> None:
        self.tap = tap
        self.module = module
        self.function = function
        self.previous = previous

    def __repr__(self) -> str:
        return f"<TappedMethod {self.function.__qualname__} recorded by {self.tap!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the shadowed method, report the call to the tap, return its output unchanged."""
        if self.previous is not None:
            output = self.previous(*args, **kwargs)
        else:
            output = self.function(self.module, *args, **kwargs)
        self.tap._record(args, output)
        return output


class MethodTap(TapBase):
    """Records what ``module.<method>`` returns on one of its calls in a step.

    Args:
        name: the tap's name (used in messages).
        module: the instance whose method is wrapped.
        method: the method's name, one of :func:`method_names` of ``module``.
        path: dotted path of the method inside its model, e.g.
            ``'pts_bbox_head.box_codes'`` (used in messages).
        io: must be ``'output'`` (a method tap records return values only).
        call: which call of the method within a step to record (0 = the first), e.g. the
            decoder layer of a method called once per layer.
        index: picks one element of the returned value: an ``int`` for a tuple / list, a
            ``str`` for a dict; ``None`` keeps it whole.

    Raises:
        ValueError: ``io`` is not ``'output'`` (or another argument is invalid).
        AttributeError: ``module`` has no tappable method ``method``.
    """

    kind = "method"

    def __init__(self, name: str, module: nn.Module, method: str, path: str, io: str = "output",
                 call: int = 0, index: TapIndex = None) -> None:
        super().__init__(name, path, io=io, call=call, index=index)
        check_method_io(name, path, io)
        if method not in method_names(module):
            raise AttributeError(f"tap '{name}': {type(module).__name__} has no method '{method}' "
                                 f"that can be tapped; it has {method_names(module)}")
        self._module = module
        self._method = method
        self._previous = module.__dict__.get(method)
        self._wrapper: Optional[TappedMethod] = TappedMethod(
            self, module, inspect.getattr_static(type(module), method), self._previous)
        module.__dict__[method] = self._wrapper

    def remove(self) -> None:
        """Put back what the instance held under the method's name and drop any recorded
        value (a second call does nothing).

        Raises:
            RuntimeError: a tap installed later on the same method is still in place
                (remove taps in reverse install order).
        """
        if self._wrapper is None:
            return
        current = self._module.__dict__.get(self._method)
        if current is not self._wrapper:
            raise RuntimeError(f"tap '{self.name}' cannot be removed from method '{self.path}': "
                               f"{current!r} was installed over it later; remove taps in reverse "
                               "install order")
        self.close()
        if self._previous is None:
            del self._module.__dict__[self._method]
        else:
            self._module.__dict__[self._method] = self._previous
        self._wrapper = None
