"""The model-zoo manifest (``ckpts/manifest.json``): what can be downloaded, from where,
with which size and hash, and which config it belongs to.

Each entry names a file that configs reference as ``ckpts/<file>``;
:func:`missing_checkpoint_message` turns a missing ``ckpts/...`` path into the command that
fetches it.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any, Optional

from ..paths import REPO_ROOT

DEFAULT_MANIFEST = REPO_ROOT / "ckpts" / "manifest.json"
SCHEMA_VERSION = 1
_FIELDS = ("name", "kind", "file", "urls", "direct", "size", "sha256", "sha256_prefix",
           "config", "source", "note")
_KINDS = ("detector", "student", "teacher", "backbone")


class ManifestError(ValueError):
    """The manifest file is malformed, or a name is not in it."""


@dataclass(frozen=True)
class CheckpointEntry:
    """One downloadable checkpoint.

    Attributes:
        name: short name used on the command line.
        kind: ``detector``, ``student``, ``teacher`` or ``backbone``.
        file: file name under the destination folder (what configs reference).
        urls: download URLs, tried in order.
        direct: False when the URLs are share pages that need a browser.
        size: bytes, or None when unknown.
        sha256: full hex digest, or None when unknown.
        sha256_prefix: leading hex digits of the digest the publisher put in the file name
            (torchvision, OpenMMLab), or None.
        config: config file the checkpoint belongs to (repository-relative), or None.
        source: where the URL was published.
        note: free text.
    """

    name: str
    kind: str
    file: str
    urls: tuple[str, ...]
    direct: bool
    size: Optional[int]
    sha256: Optional[str]
    sha256_prefix: Optional[str]
    config: Optional[str]
    source: str
    note: str

    @property
    def verifiable(self) -> bool:
        """Whether a download can be checked against a published hash or size."""
        return bool(self.sha256 or self.sha256_prefix or self.size)


#: Expected JSON types of each field (``None`` allowed where listed), for the error messages.
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a non-empty string"), "kind": ((str,), f"one of {list(_KINDS)}"),
    "file": ((str,), "a plain file name"), "urls": ((list,), "a non-empty list of URL strings"),
    "direct": ((bool,), "true or false"), "size": ((int, type(None)), "a byte count or null"),
    "sha256": ((str, type(None)), "64 lower-case hex digits or null"),
    "sha256_prefix": ((str, type(None)), "lower-case hex digits or null"),
    "config": ((str, type(None)), "a repository-relative path or null"),
    "source": ((str,), "a string"), "note": ((str,), "a string"),
}


def check_file_name(file: str, where: str) -> str:
    """``file`` if it is a plain file name (it is written as ``<dest>/<file>``).

    Raises:
        ManifestError: ``file`` is empty, absolute, or has a directory part or ``..``, so it
            could be written outside the destination folder.
    """
    if (not file or file in (".", "..") or "/" in file or "\\" in file or "\0" in file
            or PureWindowsPath(file).drive):
        raise ManifestError(
            f"{where}: file must be a plain file name inside the destination folder "
            f"(e.g. 'resnet18-f37072fd.pth'), got {file!r}; absolute paths, folders and '..' are refused")
    return file


def _check_types(raw: dict[str, Any], where: str) -> None:
    """Every field of ``raw`` has its JSON type and the required fields are there."""
    unknown = sorted(set(raw) - set(_FIELDS))
    missing = [key for key in ("name", "kind", "file", "urls") if key not in raw]
    if unknown or missing:
        raise ManifestError(f"{where}: unknown keys {unknown}, missing keys {missing} "
                            f"(allowed: {list(_FIELDS)})")
    for key, value in raw.items():
        types, expected = _TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ManifestError(f"{where}: {key} must be {expected}, got {value!r} ({type(value).__name__})")
    if not raw["name"]:
        raise ManifestError(f"{where}: name must be a non-empty string")
    if not raw["urls"] or not all(isinstance(url, str) and url for url in raw["urls"]):
        raise ManifestError(f"{where}: urls must be a non-empty list of URL strings, got {raw['urls']!r}")
    if raw.get("size") is not None and raw["size"] < 0:
        raise ManifestError(f"{where}: size must be a byte count >= 0 or null, got {raw['size']!r}")


def _entry(raw: Any, where: str) -> CheckpointEntry:
    """Validate one raw manifest entry."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: an entry must be a JSON object, got {type(raw).__name__}")
    _check_types(raw, where)
    where = f"{where} ({raw['name']!r})"
    if raw["kind"] not in _KINDS:
        raise ManifestError(f"{where}: kind must be one of {list(_KINDS)}, got {raw['kind']!r}")
    check_file_name(raw["file"], where)
    for key in ("sha256", "sha256_prefix"):
        value = raw.get(key)
        if value is not None and (not value or any(c not in "0123456789abcdef" for c in value)):
            raise ManifestError(f"{where}: {key} must be lower-case hex or null, got {value!r}")
    if raw.get("sha256") is not None and len(raw["sha256"]) != 64:
        raise ManifestError(f"{where}: sha256 must have 64 hex digits, got {len(raw['sha256'])}")
    return CheckpointEntry(
        name=raw["name"], kind=raw["kind"], file=raw["file"], urls=tuple(raw["urls"]),
        direct=raw.get("direct", True), size=raw.get("size"), sha256=raw.get("sha256"),
        sha256_prefix=raw.get("sha256_prefix"), config=raw.get("config"),
        source=raw.get("source", ""), note=raw.get("note", ""))


def load_manifest(path: str | Path | None = None) -> dict[str, CheckpointEntry]:
    """Read a manifest; entries by name, in file order.

    Args:
        path: the JSON file; default ``ckpts/manifest.json`` of this repository.

    Raises:
        FileNotFoundError: no such file.
        ManifestError: the file is not JSON, or an entry has a missing key, a wrong type or
            a file name that would leave the destination folder (the message names the file,
            the entry and the field).
    """
    path = Path(path) if path is not None else DEFAULT_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"model-zoo manifest not found: '{path}'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: the manifest must be a JSON object with 'schema_version' and "
                            f"'checkpoints', got {type(data).__name__}")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(f"{path}: schema_version must be {SCHEMA_VERSION}, got {data.get('schema_version')!r}")
    checkpoints = data.get("checkpoints", [])
    if not isinstance(checkpoints, list):
        raise ManifestError(f"{path}: 'checkpoints' must be a list of entries, got {type(checkpoints).__name__}")
    entries: dict[str, CheckpointEntry] = {}
    for index, raw in enumerate(checkpoints):
        entry = _entry(raw, f"{path} checkpoints[{index}]")
        if entry.name in entries or any(e.file == entry.file for e in entries.values()):
            raise ManifestError(f"{path}: duplicate name or file in entry {entry.name!r}")
        entries[entry.name] = entry
    return entries


def find_entry(entries: dict[str, CheckpointEntry], key: str) -> CheckpointEntry:
    """The entry whose name or file name is ``key`` (a path's file name also matches).

    Raises:
        ManifestError: no such entry; the message lists close matches.
    """
    if key in entries:
        return entries[key]
    file_name = Path(key).name
    for entry in entries.values():
        if entry.file == file_name:
            return entry
    close = difflib.get_close_matches(key, [*entries, *(e.file for e in entries.values())], n=3)
    hint = f"; did you mean {close}?" if close else ""
    raise ManifestError(f"'{key}' is not in the model-zoo manifest (names: {list(entries)}){hint}")


def missing_checkpoint_message(path: str | Path, manifest: str | Path | None = None) -> str:
    """What to tell a user whose config references a checkpoint file that is missing.

    Args:
        path: the missing file, e.g. ``ckpts/raydn_r50_704_bs2_seq_428q_nui_60e.pth``.
        manifest: the manifest to look it up in (default: this repository's).

    Returns:
        A sentence naming the file and either the download command (direct URLs), the page
        to download it from by hand, or, for files the manifest does not know, how to list
        the known ones.
    """
    path = Path(path)
    try:
        entry = find_entry(load_manifest(manifest), path.name)
    except (ManifestError, FileNotFoundError):
        return (f"checkpoint '{path}' not found, and '{path.name}' is not in the model zoo "
                f"(python tools/download_ckpts.py --list shows what can be downloaded); "
                f"check the path in the config.")
    dest = path.parent.as_posix() or "."
    if entry.direct:
        return (f"checkpoint '{path}' not found; download it with:\n"
                f"    python tools/download_ckpts.py {entry.name} --dest {dest}")
    return (f"checkpoint '{path}' not found; it is published on a share page that needs a "
            f"browser: open {entry.urls[0]} , save the file as '{path}', then check it with:\n"
            f"    python tools/download_ckpts.py {entry.name} --dest {dest}")
