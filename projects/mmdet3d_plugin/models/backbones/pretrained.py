"""Finding, downloading and reading pretrained backbone weights.

A backbone's ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (or the older
``pretrained=...``) names one of:

* ``torchvision://resnet18`` (also 34/50/101): torchvision's ImageNet weights
  (``IMAGENET1K_V1``, the ones mmcv resolves the same name to);
* an ``http(s)://`` URL;
* a local file, e.g. a detector checkpoint whose backbone keys start with ``backbone.``
  or ``img_backbone.``.

URLs are looked up first in ``ckpts/`` (relative to the working directory), then in
``$TORCH_HOME/hub/checkpoints`` (see :func:`torch.hub.get_dir`); a file found in neither is
downloaded into the latter with a progress bar, written atomically. Offline, the error
names the URL and the exact path where to put the file by hand.
"""
from __future__ import annotations

import difflib
import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from tqdm import tqdm

from ...core.checkpoint import (
    numpy_safe_globals,
    read_checkpoint,
    split_checkpoint,
)

logger = logging.getLogger(__name__)

TORCHVISION_PREFIX = "torchvision://"

#: torchvision's ImageNet (IMAGENET1K_V1) ResNet weights.
TORCHVISION_URLS = MappingProxyType({
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
})

#: Prefixes under which detector checkpoints keep their image backbone.
BACKBONE_PREFIXES = ("img_backbone.", "backbone.")

_CHUNK_BYTES = 1 << 20


class PretrainedWeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


def local_checkpoint_dir() -> Path:
    """The project's model-zoo folder, ``ckpts/`` under the working directory."""
    return Path("ckpts")


def hub_checkpoint_dir() -> Path:
    """torch's download cache, ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_url(name: str) -> str:
    """The download URL of ``torchvision://<name>`` (e.g. ``'resnet50'``)."""
    if name not in TORCHVISION_URLS:
        close = difflib.get_close_matches(name, list(TORCHVISION_URLS), n=1)
        hint = f"; did you mean '{TORCHVISION_PREFIX}{close[0]}'?" if close else ""
        raise ValueError(
            f"unknown checkpoint '{TORCHVISION_PREFIX}{name}' "
            f"(known: {[TORCHVISION_PREFIX + k for k in TORCHVISION_URLS]}){hint}"
        )
    return TORCHVISION_URLS[name]


def offline_message(url: str, destination: Path, reason: str) -> str:
    """The error text for weights that could not be downloaded."""
    return (
        f"cannot download pretrained weights from {url} ({reason}); this machine may be "
        f"offline or the URL wrong. Download that URL on a connected machine and put the file at "
        f"'{destination.resolve()}' (or at '{(local_checkpoint_dir() / destination.name).resolve()}'), "
        f"then run again."
    )


def download_file(url: str, destination: Path, *, timeout_s: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``destination`` atomically, showing a tqdm progress bar.

    The bytes go to ``<destination>.part`` in the same folder, are flushed to disk and then
    renamed; a failed download leaves nothing behind.

    Raises:
        PretrainedWeightsUnavailableError: the URL cannot be fetched (offline, HTTP error).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=destination.name, disable=not progress)
            received = 0
            with bar:
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise http.client.IncompleteRead(b"", total - received)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, destination)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        partial.unlink(missing_ok=True)
        if isinstance(err, urllib.error.HTTPError):
            reason = f"HTTP {err.code} {err.reason}"
        else:
            reason = str(getattr(err, "reason", None) or err)
        raise PretrainedWeightsUnavailableError(offline_message(url, destination, reason)) from err
    logger.info("downloaded %s to %s", url, destination)
    return destination


def resolve_checkpoint(checkpoint: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Turn a checkpoint name (``torchvision://...``, URL or path) into a local file.

    Args:
        checkpoint: see the module doc.
        cache_dir: look up and download URLs only here instead of the default folders.

    Returns:
        The path of the (possibly just downloaded) file.
    """
    if checkpoint.startswith(TORCHVISION_PREFIX):
        url = torchvision_url(checkpoint[len(TORCHVISION_PREFIX):])
    elif checkpoint.startswith(("http://", "https://")):
        url = checkpoint
    else:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"pretrained checkpoint not found: '{path}'")
        return path
    name = Path(urllib.parse.urlparse(url).path).name
    folders = [Path(cache_dir)] if cache_dir is not None else [local_checkpoint_dir(), hub_checkpoint_dir()]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return download_file(url, folders[-1] / name)


def select_backbone_keys(
    state_dict: dict[str, torch.Tensor], prefix: str | None = None
) -> dict[str, torch.Tensor]:
    """Keep the backbone's entries of a state dict, without their prefix.

    Args:
        state_dict: a backbone's or a whole detector's state dict.
        prefix: keep only keys that start with it (mmengine's ``init_cfg.prefix``). When
            None, a leading ``module.`` is dropped and, if any key starts with
            ``img_backbone.`` or ``backbone.``, only those keys are kept.
    """
    if prefix is None:
        state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
        prefix = next((p for p in BACKBONE_PREFIXES if any(k.startswith(p) for k in state_dict)), "")
    selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not selected:
        raise KeyError(
            f"no key of the pretrained checkpoint starts with prefix '{prefix}' "
            f"(first keys: {list(state_dict)[:5]})"
        )
    return selected


def read_pretrained_state_dict(
    checkpoint: str,
    *,
    prefix: str | None = None,
    map_location: str | torch.device = "cpu",
    allowed_globals: Iterable[Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Resolve, read and unwrap a pretrained backbone checkpoint.

    Args:
        checkpoint: ``torchvision://...``, URL or path.
        prefix: see :func:`select_backbone_keys`.
        map_location: where tensors are placed.
        allowed_globals: types the ``weights_only`` unpickler may build; by default the
            numpy types of :func:`numpy_safe_globals`, because published mmdet checkpoints
            keep numpy values in their ``meta`` dict.

    Returns:
        The backbone's state dict (key → tensor), prefix removed.
    """
    path = resolve_checkpoint(checkpoint)
    globals_ = numpy_safe_globals() if allowed_globals is None else tuple(allowed_globals)
    raw = read_checkpoint(path, map_location=map_location, allowed_globals=globals_)
    state_dict, _ = split_checkpoint(raw, source=f"pretrained checkpoint '{path}'")
    return select_backbone_keys(state_dict, prefix)


_PRETRAINED_KEYS = ("type", "checkpoint", "prefix", "map_location")


def pretrained_init_args(
    init_cfg: dict[str, Any] | None, pretrained: str | None, owner: str
) -> dict[str, Any] | None:
    """Validate a backbone's ``init_cfg`` / ``pretrained`` pair (mmdet semantics).

    Args:
        init_cfg: None or ``dict(type='Pretrained', checkpoint=..., prefix=None,
            map_location='cpu')``.
        pretrained: the older spelling, a checkpoint name; exclusive with ``init_cfg``.
        owner: the class name, for messages.

    Returns:
        The keyword arguments for :func:`read_pretrained_state_dict` (``checkpoint``,
        ``prefix``, ``map_location``), or None for random initialisation.
    """
    if pretrained is not None and init_cfg is not None:
        raise ValueError(f"{owner}: give either init_cfg or pretrained, not both")
    if pretrained is not None:
        if not isinstance(pretrained, str):
            raise TypeError(f"{owner}: pretrained must be a checkpoint name (str), got {pretrained!r}")
        return dict(checkpoint=pretrained, prefix=None, map_location="cpu")
    if init_cfg is None:
        return None
    for key in init_cfg:
        if key not in _PRETRAINED_KEYS:
            close = difflib.get_close_matches(key, _PRETRAINED_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"{owner}: init_cfg has no key '{key}' (allowed: {list(_PRETRAINED_KEYS)}){hint}"
            )
    if init_cfg.get("type") != "Pretrained" or "checkpoint" not in init_cfg:
        raise ValueError(
            f"{owner}: only init_cfg=dict(type='Pretrained', checkpoint=...) is supported, got "
            f"{init_cfg}; leave init_cfg=None for the default (Kaiming) initialisation"
        )
    return dict(
        checkpoint=str(init_cfg["checkpoint"]),
        prefix=init_cfg.get("prefix"),
        map_location=init_cfg.get("map_location", "cpu"),
    )
