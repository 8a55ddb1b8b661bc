"""TapManager: the declared feature taps of a distiller, their hooks and their one step.

Taps are declared in a config by name::

    taps = dict(
        s_fpn_0=dict(model='student', path='img_neck.fpn_convs.0.conv'),
        t_fpn_0=dict(model='teacher', path='img_neck.fpn_convs.0.conv'),
        s_dec_1=dict(model='student', path='pts_bbox_head.transformer.decoder.layers.1',
                     io='output', call=0, index=None),
        s_attn_5=dict(model='student', path='pts_bbox_head.transformer.decoder.layers.5.attentions.1.attn',
                      index=1, need_weights=True),
    )

``need_weights=True`` switches on the attention map of the tapped attention: the nearest
module on the path (the tapped module or one above it) with a ``need_weights`` attribute
(``MultiheadAttention`` and its flash variant) gets ``need_weights = True`` for as long as
the taps are installed, so its inner ``attn`` returns ``(out, map)`` instead of
``(out, None)``; :meth:`TapManager.remove` switches it back.

A path that names no module but ends in a method of a module records that method's return
value (a :class:`~.method_tap.MethodTap`, output only), e.g.::

    s_box=dict(model='student', path='pts_bbox_head.box_codes', call=5),
    s_points=dict(model='student', path='pts_bbox_head.transformer.decoder.layers.5.attentions.1.key_points'),

The manager resolves every path when it is built (a wrong path fails there, with close
matches among the model's ``named_modules()`` and the methods of the path's parent module),
installs one forward hook or method wrapper per tap, in declaration order, and keeps them.
Values are recorded only inside :meth:`TapManager.recording` (one training step), handed
out once by :meth:`TapManager.pop` and dropped when the step ends; :meth:`TapManager.remove`
takes every hook and wrapper off again, in reverse install order.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Optional, Union

from torch import nn

from .base_tap import check_tap_arguments
from .feature_tap import FeatureTap
from .method_tap import MethodTap, check_method_io, method_names

TAP_KEYS = ("model", "path", "io", "call", "index", "need_weights")
WEIGHTS_SWITCH = "need_weights"


def _missing(root: nn.Module, path: str, owner: str, names: list[str], what: str) -> KeyError:
    """The error for a path that names nothing, with close matches among ``names``."""
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
    hint = f" Close matches: {close}." if close else f" It has {len(names)} modules, e.g. {names[:5]}."
    return KeyError(f"{owner}: {type(root).__name__} has no module '{path}'{what}.{hint}")


def resolve_module(root: nn.Module, path: str, owner: str) -> nn.Module:
    """The submodule of ``root`` at dotted ``path``.

    Args:
        root: the model searched.
        path: e.g. ``'img_neck.fpn_convs.0.conv'``.
        owner: names the root in messages (e.g. ``"tap 's_fpn_0' (student)"``).

    Raises:
        KeyError: no such module; the message lists close matches.
    """
    modules = dict(root.named_modules())
    if path in modules and path:
        return modules[path]
    raise _missing(root, path, owner, [name for name in modules if name], "")


def resolve_target(root: nn.Module, path: str, owner: str) -> tuple[nn.Module, Optional[str]]:
    """The module a tap at dotted ``path`` attaches to, and the method it wraps.

    Returns:
        ``(module, None)`` when ``path`` names a submodule of ``root``;
        ``(parent, method)`` when it ends in a tappable method of the module ``parent``
        (see :func:`~.method_tap.method_names`), e.g. ``'pts_bbox_head.box_codes'``.

    Raises:
        KeyError: neither; the message lists close matches among the module names and the
            methods of the path's parent module.
    """
    modules = dict(root.named_modules())
    if path in modules and path:
        return modules[path], None
    parent_path, _, method = path.rpartition(".")
    parent = modules.get(parent_path)
    names = [name for name in modules if name]
    if parent is not None:
        methods = method_names(parent)
        if method in methods:
            return parent, method
        names += [f"{parent_path}.{name}" if parent_path else name for name in methods]
    raise _missing(root, path, owner, names, " nor a method at that path")


def _check_spec(name: str, spec: Mapping[str, Any], models: Mapping[str, nn.Module]) -> None:
    """Raise a clear error for an unknown key, model name or a missing path."""
    unknown = [key for key in spec if key not in TAP_KEYS]
    if unknown:
        close = {key: difflib.get_close_matches(key, TAP_KEYS, n=1) for key in unknown}
        raise KeyError(f"tap '{name}': unknown keys {unknown} (close matches: {close}); "
                       f"a tap takes {list(TAP_KEYS)}")
    for key in ("model", "path"):
        if key not in spec:
            raise KeyError(f"tap '{name}' needs '{key}', e.g. dict(model='student', "
                           f"path='img_neck.fpn_convs.0.conv')")
    if spec["model"] not in models:
        raise KeyError(f"tap '{name}': model must be one of {sorted(models)}, got {spec['model']!r}")
    check_tap_arguments(name, spec.get("io", "output"), spec.get("call", 0), spec.get("index"))
    if not isinstance(spec.get(WEIGHTS_SWITCH, False), bool):
        raise ValueError(f"tap '{name}': {WEIGHTS_SWITCH} must be True or False, got {spec[WEIGHTS_SWITCH]!r}")


def weights_switch(root: nn.Module, path: str, owner: str) -> nn.Module:
    """The nearest module at ``path`` or above it that has a ``need_weights`` attribute.

    Raises:
        KeyError: no module on the path has one (it cannot return an attention map).
    """
    modules = dict(root.named_modules())
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        candidate = modules.get(".".join(parts[:end]))
        if candidate is not None and isinstance(getattr(candidate, WEIGHTS_SWITCH, None), bool):
            return candidate
    raise KeyError(f"{owner}: {WEIGHTS_SWITCH}=True, but neither '{path}' nor a module above it has a "
                   f"'{WEIGHTS_SWITCH}' switch; tap the inner 'attn' of a MultiheadAttention, e.g. "
                   "'pts_bbox_head.transformer.decoder.layers.5.attentions.1.attn' with index=1")


class TapManager:
    """Owns the forward hooks and method wrappers of the declared taps.

    Args:
        models: the models taps may name, e.g. ``{'student': student, 'teacher': teacher}``.
        taps: tap name → ``dict(model=..., path=..., io='output', call=0, index=None,
            need_weights=False)`` (see :class:`FeatureTap`, :class:`MethodTap` and the
            module docstring).

    Every spec is checked before any hook or wrapper is installed, so a bad declaration
    leaves nothing behind.
    """

    def __init__(self, models: Mapping[str, nn.Module], taps: Mapping[str, Mapping[str, Any]]) -> None:
        resolved, switches = {}, {}
        for name, spec in taps.items():
            _check_spec(name, spec, models)
            owner = f"tap '{name}' ({spec['model']})"
            module, method = resolve_target(models[spec["model"]], spec["path"], owner)
            if method is not None:
                check_method_io(name, spec["path"], spec.get("io", "output"))
            resolved[name] = (module, method, dict(spec))
            if spec.get(WEIGHTS_SWITCH, False):
                switch = weights_switch(models[spec["model"]], spec["path"], owner)
                switches[id(switch)] = switch
        self._switched = {key: (module, getattr(module, WEIGHTS_SWITCH)) for key, module in switches.items()}
        for module, _ in self._switched.values():
            setattr(module, WEIGHTS_SWITCH, True)
        self._taps: dict[str, Union[FeatureTap, MethodTap]] = {}
        for name, (module, method, spec) in resolved.items():
            options = dict(io=spec.get("io", "output"), call=spec.get("call", 0), index=spec.get("index"))
            if method is None:
                self._taps[name] = FeatureTap(name, module, spec["path"], **options)
            else:
                self._taps[name] = MethodTap(name, module, method, spec["path"], **options)
        self._recording = False
        self._removed = False

    def __repr__(self) -> str:
        return f"TapManager({list(self._taps.values())})"

    def __len__(self) -> int:
        return len(self._taps)

    @property
    def names(self) -> tuple[str, ...]:
        """The declared tap names, in declaration order."""
        return tuple(self._taps)

    def tap(self, name: str) -> Union[FeatureTap, MethodTap]:
        """The tap called ``name`` (KeyError with close matches otherwise)."""
        if name not in self._taps:
            close = difflib.get_close_matches(name, list(self._taps), n=3)
            raise KeyError(f"no tap named '{name}'; declared: {list(self._taps)}"
                           + (f" (close matches: {close})" if close else ""))
        return self._taps[name]

    @property
    def is_recording(self) -> bool:
        """Whether a step is being recorded."""
        return self._recording

    @contextmanager
    def recording(self) -> Iterator["TapManager"]:
        """Record during the ``with`` block (one step); everything recorded is dropped on exit."""
        if self._removed:
            raise RuntimeError("the taps were removed (TapManager.remove); nothing can be recorded")
        if self._recording:
            raise RuntimeError("TapManager.recording() is already active; steps cannot nest")
        self._recording = True
        for tap in self._taps.values():
            tap.open()
        try:
            yield self
        finally:
            for tap in self._taps.values():
                tap.close()
            self._recording = False

    def pop(self, name: str) -> Any:
        """Hand out the value recorded by tap ``name`` in this step (once)."""
        return self.tap(name).pop()

    def remove(self) -> None:
        """Remove every hook and method wrapper (in reverse install order, so stacked
        wrappers on one method unwind) and restore the attention switches; the manager
        holds no taps afterwards."""
        for tap in reversed(list(self._taps.values())):
            tap.remove()
        for module, before in self._switched.values():
            setattr(module, WEIGHTS_SWITCH, before)
        self._taps, self._switched = {}, {}
        self._removed = True
