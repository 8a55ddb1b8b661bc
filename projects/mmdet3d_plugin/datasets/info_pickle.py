"""Reading info ``.pkl`` files without running code from them.

``pickle.load`` builds whatever *global* (module attribute) a file names and calls it, so a
crafted info file can run ``os.system`` while it is being read. Info files are data: plain
containers (dict, list, tuple, str, int, float, bool, None, bytes), numpy arrays, dtypes and
scalars. :class:`InfoUnpickler` admits exactly the globals those need (:data:`ALLOWED_GLOBALS`)
and refuses every other one with :class:`UnsafePickleError`, before it is imported or called.

The admitted globals, per writer:

* our converter (``pickle.HIGHEST_PROTOCOL``): ``numpy.dtype``, ``numpy.ndarray``,
  ``numpy.core.multiarray._reconstruct`` / ``scalar``, ``numpy.core.numeric._frombuffer``;
* mmcv / StreamPETR (protocol 2): the same, plus ``_codecs.encode`` (how protocol 2 stores
  bytes; only the ``latin1`` codec is admitted) and ``__builtin__.set`` / ``complex``;
* numpy 2 writes ``numpy._core.*`` where numpy 1 writes ``numpy.core.*``; either spelling is
  resolved against the installed numpy, so files of one numpy read under the other. The
  dtype classes of ``numpy.dtypes`` (numpy >= 1.25) are admitted too (they only build dtypes).

Object arrays are admitted as containers: their elements go through the same unpickler.
"""
from __future__ import annotations

import _codecs
import collections
import importlib
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

_NUMPY_CORE_PREFIXES = ("numpy._core.", "numpy.core.")
_NUMPY_CORE_GLOBALS = {"multiarray": ("_reconstruct", "scalar"), "numeric": ("_frombuffer",)}
_BUILTIN_TYPES: dict[str, type] = {
    "set": set, "frozenset": frozenset, "complex": complex, "bytearray": bytearray}
_MODULE_ALIASES = {"__builtin__": "builtins"}  # protocol <= 2 pickles written with fix_imports
# numpy >= 1.25 gives each dtype its own class (``numpy.dtypes.Float64DType``, ...).
_DTYPE_CLASSES = tuple(name for name in dir(getattr(np, "dtypes", None)) if name.endswith("DType"))

#: ``(module, name)`` pairs an info file may reference; everything else is refused.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("builtins", name) for name in _BUILTIN_TYPES}
    | {("collections", "OrderedDict"), ("_codecs", "encode"), ("numpy", "dtype"), ("numpy", "ndarray")}
    | {("numpy.dtypes", name) for name in _DTYPE_CLASSES}
    | {(prefix + module, name) for prefix in _NUMPY_CORE_PREFIXES
       for module, names in _NUMPY_CORE_GLOBALS.items() for name in names}
)

#: What :func:`load_info_pickle` turns into :class:`InfoFileError` (the exceptions ``pickle``
#: documents for corrupt input, and those numpy raises on malformed array state).
_CORRUPT_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                   KeyError, AttributeError, ImportError, OverflowError, MemoryError)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that is not in :data:`ALLOWED_GLOBALS`; nothing was run."""


class InfoFileError(ValueError):
    """An info file cannot be read: empty, truncated, not a pickle, or not an info file."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for ``bytes`` (``latin1`` only)."""
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode with codec {encoding!r}; only 'latin1' is admitted")
    return _codecs.encode(text, "latin1")


def _numpy_core_global(submodule: str, name: str) -> Any:
    """``numpy._core.<submodule>.<name>`` or, on numpy 1.x, ``numpy.core.<submodule>.<name>``."""
    for prefix in _NUMPY_CORE_PREFIXES:
        try:
            module = importlib.import_module(prefix + submodule)
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise ImportError(f"the installed numpy has no core.{submodule}.{name}")


class InfoUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that builds only :data:`ALLOWED_GLOBALS`.

    Args:
        file: the open binary file.
        source: the file's name, used in errors.
    """

    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        module = _MODULE_ALIASES.get(module, module)
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"info file {self.source} references the global '{module}.{name}', which is refused: "
                f"info files may only hold plain containers and numpy arrays/scalars "
                f"(admitted globals: {sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS)}). "
                f"Nothing from the file was run; regenerate it with tools/create_data_nusc.py"
            )
        return self._resolve(module, name)

    @staticmethod
    def _resolve(module: str, name: str) -> Any:
        resolvers: dict[tuple[str, str], Callable[[], Any]] = {
            ("_codecs", "encode"): lambda: _latin1_encode,
            ("collections", "OrderedDict"): lambda: collections.OrderedDict,
        }
        if (module, name) in resolvers:
            return resolvers[(module, name)]()
        if module == "builtins":
            return _BUILTIN_TYPES[name]
        if module == "numpy":
            return getattr(np, name)
        if module == "numpy.dtypes":
            return getattr(np.dtypes, name)
        return _numpy_core_global(module.rsplit(".", 1)[1], name)


def load_info_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`InfoUnpickler`.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafePickleError: the file references a global outside :data:`ALLOWED_GLOBALS`
            (the message names the file and the global).
        InfoFileError: the file is empty, truncated or not a pickle (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"info file {path} does not exist (create it with tools/create_data_nusc.py)")
    try:
        with open(path, "rb") as file:
            return InfoUnpickler(file, str(path)).load()
    except UnsafePickleError as err:
        if str(path) in str(err):
            raise
        raise UnsafePickleError(f"info file {path}: {err}") from err
    except _CORRUPT_ERRORS as err:
        size = path.stat().st_size
        what = "is empty" if size == 0 else f"({size} bytes) is truncated, corrupt or not a pickle"
        raise InfoFileError(
            f"cannot read info file {path}: it {what} ({type(err).__name__}: {err}); "
            f"expected a pickle of dict(infos=[...], metadata=dict(version=...)) as written by "
            f"tools/create_data_nusc.py — regenerate it"
        ) from err
