"""The registries of HarmoDistill.

Every buildable object is registered under its class name and built from a config dict
whose ``type`` names it, exactly as in StreamPETR / RayDN configs::

    model = MODELS.build(cfg.model, config_path="model")

``MODELS`` holds detectors, backbones, necks, heads, transformer parts, losses, the
distiller and its losses; ``TASK_UTILS`` holds assigners, box coders and match costs;
``DATASETS`` the datasets, ``TRANSFORMS`` the pipeline steps and ``DATA_SAMPLERS`` the
samplers.

``MODELS`` and ``TASK_UTILS`` build through :func:`checked_build`: before a constructor
runs, ``type`` is looked up and the other keys are checked against the constructor's
signature. A mistake is a :class:`ConfigBuildError` naming the config path (e.g.
``model.pts_bbox_head``), the class and close matches. Parts built inside a parent's
constructor (a detector builds its head, the head its transformer) extend the path as the
error passes through the parent's build.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from mmengine.registry import Registry, build_from_cfg


class ConfigBuildError(Exception):
    """A config dict cannot be built: unknown ``type`` or arguments the class does not take.

    Attributes:
        path: the config path segments from the outermost config built, e.g.
            ``['model', 'pts_bbox_head']``.
        problem: what is wrong at that path.
    """

    def __init__(self, problem: str, cfg: Mapping[str, Any], path: Sequence[str] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.cfg = cfg  # the config dict of the outermost build the error has passed through
        self.path = list(path)

    def nest(self, segments: Sequence[str], outer_cfg: Mapping[str, Any]) -> None:
        """Prefix ``segments`` to :attr:`path`; ``outer_cfg`` becomes the outermost config."""
        self.path = [*segments, *self.path]
        self.cfg = outer_cfg

    def __str__(self) -> str:
        where = ".".join(self.path) if self.path else "<the config given to build>"
        return f"config '{where}': {self.problem}"


class UnknownTypeError(ConfigBuildError, KeyError):
    """``type=`` names nothing registered."""


class ConfigArgumentError(ConfigBuildError, TypeError):
    """The config's keys do not fit the constructor's parameters."""


def _close(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {close}?" if close else ""


def _resolve(obj_type: Any, registry: Registry, cfg: Mapping[str, Any]) -> Any:
    """The class (or function) ``type`` names; :class:`UnknownTypeError` if none."""
    if not isinstance(obj_type, str):
        return obj_type
    obj_cls = registry.get(obj_type)
    if obj_cls is None:
        raise UnknownTypeError(
            f"type={obj_type!r} is not registered in the {registry.name!r} registry."
            f"{_close(obj_type, sorted(registry.module_dict))}", cfg)
    return obj_cls


def _parameters(obj_cls: Any) -> Optional[list[inspect.Parameter]]:
    """The parameters a config may set: a class whose ``__init__`` takes ``**kwargs`` passes
    them on to its base class, whose parameters are followed (None: nothing to check)."""
    try:
        params = list(inspect.signature(obj_cls).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return None
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return params
    base = next((b for b in obj_cls.__mro__[1:] if "__init__" in vars(b)), None) \
        if inspect.isclass(obj_cls) else None
    if base is None or base.__module__.split(".")[0] in ("torch", "builtins"):
        return None
    inherited = _parameters(base)
    if inherited is None:
        return None
    own = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    names = {p.name for p in own}
    return own + [p for p in inherited if p.name not in names]


def _check_arguments(obj_cls: Any, args: Mapping[str, Any], cfg: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigArgumentError` for keys ``obj_cls`` does not take or lacks."""
    params = _parameters(obj_cls)
    if params is None:
        return
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in params if p.kind in named]
    name = getattr(obj_cls, "__name__", repr(obj_cls))
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        for key in args:
            if key not in names:
                hint = _close(key, names) or f" It takes {names}."
                raise ConfigArgumentError(f"{name} has no argument {key!r}.{hint}", cfg)
    missing = [p.name for p in params
               if p.kind in named and p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        raise ConfigArgumentError(f"{name} needs the argument(s) {missing}, which the config lacks.", cfg)


def _find(value: Any, target: Mapping[str, Any], exact: bool) -> Optional[list[str]]:
    """Shallowest path inside ``value`` to a dict equal to ``target`` (``exact``) or with the
    same ``type`` (otherwise); ``None`` when there is none."""
    level: list[tuple[list[str], Any]] = [([], value)]
    while level:
        below: list[tuple[list[str], Any]] = []
        for path, item in level:
            if path and isinstance(item, Mapping):
                if item == target if exact else item.get("type") == target.get("type"):
                    return path
            if isinstance(item, Mapping):
                below.extend(([*path, str(k)], v) for k, v in item.items())
            elif isinstance(item, (list, tuple)):
                below.extend(([*path[:-1], f"{path[-1]}[{i}]" if path else f"[{i}]"], v)
                             for i, v in enumerate(item))
        level = below
    return None


def _locate(child: Mapping[str, Any], parent: Mapping[str, Any], parent_name: str) -> list[str]:
    """Where ``child`` (a config a constructor built) sits inside its parent's config."""
    path = _find(parent, child, exact=True) or _find(parent, child, exact=False)
    return path if path is not None else [f"<built inside {parent_name}>"]


def checked_build(cfg: Mapping[str, Any], registry: Registry,
                  default_args: Optional[Mapping[str, Any]] = None, config_path: str = "") -> Any:
    """mmengine's ``build_from_cfg`` after checking ``type`` and the arguments.

    Args:
        cfg: a config dict with ``type``.
        registry: where ``type`` is looked up.
        default_args: arguments used where ``cfg`` has none.
        config_path: where ``cfg`` sits in the user's config (e.g. ``'model'``), for errors.

    Raises:
        UnknownTypeError: ``type`` is not registered (with close matches).
        ConfigArgumentError: a key the constructor does not take (with close matches of its
            parameter names), or a required argument missing.
    """
    args = {**dict(default_args or {}), **dict(cfg)}
    args.pop("_scope_", None)
    root = config_path.split(".") if config_path else []
    obj_cls: Any = None
    try:
        obj_cls = _resolve(args.pop("type", None), registry, cfg)
        _check_arguments(obj_cls, args, cfg)
        return build_from_cfg(cfg, registry, default_args)
    except ConfigBuildError as err:
        if err.cfg is not cfg:  # raised by a part built inside this constructor
            err.nest(_locate(err.cfg, cfg, getattr(obj_cls, "__name__", "?")), cfg)
        err.nest(root, cfg)
        raise


MODELS = Registry("model", scope="harmodistill", build_func=checked_build)
TASK_UTILS = Registry("task util", scope="harmodistill", build_func=checked_build)
DATASETS = Registry("dataset", scope="harmodistill")
TRANSFORMS = Registry("transform", scope="harmodistill")
DATA_SAMPLERS = Registry("data sampler", scope="harmodistill")

__all__ = ["MODELS", "TASK_UTILS", "DATASETS", "TRANSFORMS", "DATA_SAMPLERS", "ConfigBuildError",
           "UnknownTypeError", "ConfigArgumentError", "checked_build"]
