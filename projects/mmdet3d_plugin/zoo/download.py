"""Resumable, verified downloads of model-zoo checkpoints.

A download writes into ``<dest>/<file>.part``. When that file already holds bytes (an
interrupted earlier run), the request asks for the rest with ``Range: bytes=<n>-``; a server
that answers ``206`` is appended to, a server that ignores the range (``200``) is written
from byte 0 again. A transfer cut off mid-way is retried (resuming) a few times; if it still
fails, the ``.part`` stays for the next run to resume (a connection that delivered no byte
leaves no file, and the error says so). The file name of an entry must stay inside the
destination folder (:func:`destination_path`).

After the transfer the ``.part`` is checked against the manifest's size and sha256 (full
digest, or the prefix the publisher put into the file name). Only a verified file is
renamed to its final name (``os.replace``, atomic), so the final name never holds a
partial or corrupt file. A file that fails the check is **deleted** (resuming cannot repair
it, and a full-size ``.part`` would only make the next run resume past its end); the error
gives the expected and actual size and digest. Where the manifest has no hash, the digest
is computed, reported and the result marked as not verified.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from tqdm import tqdm

from .manifest import CheckpointEntry, ManifestError, check_file_name

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class DownloadError(RuntimeError):
    """A checkpoint could not be downloaded."""


class HttpStatusError(DownloadError):
    """The server answered with an HTTP error status (404, 403, 500, ...)."""


class NetworkError(DownloadError):
    """The connection failed or broke off; received bytes (if any) stay in the ``.part``."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not match the manifest's size or sha256."""


class ManualDownloadRequired(DownloadError):
    """The checkpoint is only published on a share page that needs a browser."""


@dataclass(frozen=True)
class DownloadResult:
    """Outcome of :func:`fetch_checkpoint`.

    Attributes:
        path: the final file.
        sha256: its digest (hex).
        size: its size in bytes.
        verified: True when checked against a published size/sha256 (prefix).
        status: ``downloaded``, ``resumed`` (a partial file was continued) or ``present``.
    """

    path: Path
    sha256: str
    size: int
    verified: bool
    status: str


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, entry: CheckpointEntry) -> tuple[str, bool]:
    """Check ``path`` against ``entry``'s size and hash.

    Returns:
        ``(sha256, verified)``; ``verified`` is False when the manifest gives neither.

    Raises:
        ChecksumMismatchError: size or digest differ (the file is left alone).
    """
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ChecksumMismatchError(f"'{path}' has {size} bytes, the manifest says {entry.size} "
                                    f"for '{entry.name}'")
    digest = sha256_of(path)
    expected = entry.sha256 or entry.sha256_prefix
    if expected and not digest.startswith(expected):
        raise ChecksumMismatchError(f"'{path}' has sha256 {digest}, the manifest expects "
                                    f"{expected}{'' if entry.sha256 else '...'} for '{entry.name}'")
    return digest, entry.verifiable


def _open(url: str, offset: int, timeout_s: float) -> http.client.HTTPResponse:
    """Send the (range) request; HTTP error statuses become :class:`HttpStatusError`."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        err.close()
        raise HttpStatusError(f"HTTP {err.code} {err.reason} for {url}") from err


def _transfer(url: str, part: Path, timeout_s: float, progress: bool) -> bool:
    """Fetch ``url`` into ``part``, continuing its bytes when the server honours Range.

    Returns:
        True when existing bytes were continued (a resume).
    """
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout_s)
    except HttpStatusError as err:
        if offset and "HTTP 416" in str(err):
            return True  # nothing left to fetch: the .part is complete (verification decides)
        raise
    with response:
        resumed = offset > 0 and response.status == 206
        if offset and not resumed:
            logger.info("%s ignored the Range request; downloading from byte 0", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5],
                disable=not progress) as bar:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received < total:
            raise http.client.IncompleteRead(b"", total - received)
    return resumed


def _on_disk(part: Path) -> tuple[int, str]:
    """Bytes in ``part`` and a sentence saying what exists on disk (an empty ``.part`` is removed)."""
    kept = part.stat().st_size if part.exists() else 0
    if kept:
        return kept, f"{kept} bytes are kept in '{part}'; run the same command again to resume"
    part.unlink(missing_ok=True)
    return 0, "no bytes were received and nothing was written to disk; run the same command again to retry"


def _fetch_url(url: str, part: Path, timeout_s: float, progress: bool, retries: int) -> bool:
    """:func:`_transfer` with ``retries`` resuming retries after network failures.

    Returns:
        True when the file was continued from earlier bytes at some point.
    """
    resumed, attempt = False, 0
    while True:
        try:
            return _transfer(url, part, timeout_s, progress) or resumed
        except _NETWORK_ERRORS as err:
            kept, on_disk = _on_disk(part)
            if attempt >= retries:
                raise NetworkError(f"download of {url} failed ({type(err).__name__}: {err}); {on_disk}") from err
            logger.warning("download of %s broke off after %d bytes (%s); %s", url, kept, err,
                           "resuming" if kept else "retrying")
            resumed, attempt = resumed or kept > 0, attempt + 1


def destination_path(entry: CheckpointEntry, dest: str | Path) -> Path:
    """``dest/<entry.file>``, checked to stay inside ``dest``.

    The name must be a plain file name (no folder, ``..`` or drive), and its ``.part`` must
    not be a symbolic link (writing through one would land outside ``dest``). A final file
    the user linked to elsewhere is only read (a download replaces the link, not its target).

    Raises:
        ManifestError: the entry's file name would leave ``dest``; the message names the entry.
    """
    final = Path(dest) / check_file_name(entry.file, f"manifest entry {entry.name!r}")
    part = final.with_name(final.name + ".part")
    if part.is_symlink():
        raise ManifestError(f"manifest entry {entry.name!r}: '{part}' is a symbolic link (to "
                            f"'{os.readlink(part)}'); remove it, downloads are written only inside '{dest}'")
    return final


def fetch_checkpoint(entry: CheckpointEntry, dest: str | Path, progress: bool = True,
                     timeout_s: float = 60.0, retries: int = 2) -> DownloadResult:
    """Make sure ``dest/<entry.file>`` exists and is verified; download it if needed.

    Args:
        entry: the manifest entry.
        dest: destination folder (created).
        progress: show a tqdm progress bar.
        timeout_s: socket timeout of each request.
        retries: resuming retries after a broken transfer (per URL).

    Raises:
        ManualDownloadRequired: a share-page entry whose file is not there yet.
        HttpStatusError: every URL answered with an HTTP error (e.g. 404).
        NetworkError: the transfer failed; bytes received so far stay in the ``.part`` for
            resuming (the message says how many, or that nothing was written).
        ManifestError: the entry's file name would leave ``dest``.
        ChecksumMismatchError: the bytes differ from the manifest (the ``.part`` is deleted;
            an existing final file is left for the user to inspect).
    """
    dest = Path(dest)
    final = destination_path(entry, dest)
    if final.is_file():
        digest, verified = check_file(final, entry)
        return DownloadResult(final, digest, final.stat().st_size, verified, "present")
    if not entry.direct:
        raise ManualDownloadRequired(
            f"'{entry.name}' is published on a share page that needs a browser: open "
            f"{entry.urls[0]} , save the file as '{final}', then run this command again to check it")
    dest.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    failures = []
    for url in entry.urls:
        try:
            resumed = _fetch_url(url, part, timeout_s, progress, retries)
        except HttpStatusError as err:
            failures.append(str(err))
            continue
        return _finish(entry, part, final, resumed)
    raise HttpStatusError(f"no URL of '{entry.name}' could be fetched: " + "; ".join(failures)
                          + " (the manifest entry may be outdated)")


def _finish(entry: CheckpointEntry, part: Path, final: Path, resumed: bool) -> DownloadResult:
    """Verify ``part``, then rename it to ``final`` (or delete it and raise)."""
    try:
        digest, verified = check_file(part, entry)
    except ChecksumMismatchError as err:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"{err}; the download was deleted, run again to fetch it anew") from err
    os.replace(part, final)
    return DownloadResult(final, digest, final.stat().st_size, verified,
                          "resumed" if resumed else "downloaded")


def describe_result(entry: CheckpointEntry, result: DownloadResult) -> str:
    """One line for the user: what happened and whether the file was verified."""
    check = ("verified against the manifest" if result.verified else
             "NOT verified: the manifest has no size or sha256 for it")
    return f"{entry.name}: {result.status} {result.path} ({result.size} bytes, sha256 {result.sha256}; {check})"
