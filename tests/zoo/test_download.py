"""Resumable, verified downloads against a local HTTP server."""
from __future__ import annotations

import hashlib
import socket
from dataclasses import replace

import pytest

from projects.mmdet3d_plugin.zoo.download import (
    ChecksumMismatchError, HttpStatusError, ManualDownloadRequired, NetworkError, fetch_checkpoint)
from projects.mmdet3d_plugin.zoo.manifest import ManifestError


def _fetch(entry, dest, retries=0):
    return fetch_checkpoint(entry, dest, progress=False, timeout_s=5.0, retries=retries)


def test_full_download_is_verified_and_atomic(server, entry, payload, tmp_path):
    result = _fetch(entry, tmp_path)
    assert result.status == "downloaded" and result.verified
    assert (tmp_path / entry.file).read_bytes() == payload
    assert result.sha256 == hashlib.sha256(payload).hexdigest()
    assert not (tmp_path / (entry.file + ".part")).exists()
    assert server.config.requests == [("/ckpt.pth", None)]


def test_interrupted_download_resumes_with_range(server, entry, payload, tmp_path):
    half = len(payload) // 2
    server.config.drop_after["/ckpt.pth"] = half
    with pytest.raises(NetworkError, match="run the same command again to resume"):
        _fetch(entry, tmp_path)
    part = tmp_path / (entry.file + ".part")
    assert part.read_bytes() == payload[:half]
    assert not (tmp_path / entry.file).exists()
    result = _fetch(entry, tmp_path)
    assert result.status == "resumed" and result.verified
    assert server.config.requests[-1] == ("/ckpt.pth", f"bytes={half}-")
    assert (tmp_path / entry.file).read_bytes() == payload and not part.exists()


def test_broken_transfer_is_retried_within_one_call(server, entry, payload, tmp_path):
    server.config.drop_after["/ckpt.pth"] = 1000
    result = _fetch(entry, tmp_path, retries=1)
    assert result.status == "resumed"
    assert [r[1] for r in server.config.requests] == [None, "bytes=1000-"]
    assert (tmp_path / entry.file).read_bytes() == payload


def test_server_ignoring_range_restarts_from_zero(server, entry, payload, tmp_path):
    server.config.ignore_range = True
    (tmp_path / (entry.file + ".part")).write_bytes(b"x" * 5000)  # stale bytes
    result = _fetch(entry, tmp_path)
    assert server.config.requests == [("/ckpt.pth", "bytes=5000-")]
    assert result.status == "downloaded"
    assert (tmp_path / entry.file).read_bytes() == payload


def test_wrong_checksum_is_refused_and_nothing_is_kept(server, entry, tmp_path):
    bad = replace(entry, sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match="0000000000"):
        _fetch(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_is_refused(server, entry, tmp_path):
    with pytest.raises(ChecksumMismatchError, match="bytes"):
        _fetch(replace(entry, size=entry.size + 1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_sha256_prefix_from_the_file_name_is_checked(server, entry, payload, tmp_path):
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    assert _fetch(replace(entry, sha256=None, size=None, sha256_prefix=prefix), tmp_path).verified
    with pytest.raises(ChecksumMismatchError):
        _fetch(replace(entry, file="other.pth", sha256=None, sha256_prefix="ffffffff"), tmp_path)


def test_unknown_hash_is_computed_and_marked_unverified(server, unhashed, payload, tmp_path):
    result = _fetch(unhashed, tmp_path)
    assert not result.verified and result.sha256 == hashlib.sha256(payload).hexdigest()


def test_404_is_reported_and_the_next_url_is_tried(server, entry, payload, tmp_path):
    with pytest.raises(HttpStatusError, match="HTTP 404"):
        _fetch(replace(entry, urls=(server.url("/missing.pth"),)), tmp_path)
    assert list(tmp_path.iterdir()) == []
    result = _fetch(replace(entry, urls=(server.url("/missing.pth"), server.url("/ckpt.pth"))), tmp_path)
    assert result.verified and (tmp_path / entry.file).read_bytes() == payload


def test_network_failure_is_reported(entry, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NetworkError, match="failed"):
        _fetch(replace(entry, urls=(f"http://127.0.0.1:{port}/x.pth",)), tmp_path)
    assert not (tmp_path / entry.file).exists()


def test_present_file_is_checked_without_a_request(server, entry, payload, tmp_path):
    (tmp_path / entry.file).write_bytes(payload)
    assert _fetch(entry, tmp_path).status == "present"
    assert server.config.requests == []
    (tmp_path / entry.file).write_bytes(b"corrupt")
    with pytest.raises(ChecksumMismatchError):
        _fetch(entry, tmp_path)
    assert (tmp_path / entry.file).read_bytes() == b"corrupt"  # the user's file is left alone


def test_share_page_entries_need_a_manual_download(entry, tmp_path):
    with pytest.raises(ManualDownloadRequired, match="save the file as"):
        _fetch(replace(entry, direct=False), tmp_path)


def test_network_failure_says_what_exists_on_disk(entry, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NetworkError) as info:
        _fetch(replace(entry, urls=(f"http://127.0.0.1:{port}/x.pth",)), tmp_path)
    assert "nothing was written to disk" in str(info.value) and "are kept" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_escaping_file_name_writes_nothing_outside_dest(server, entry, tmp_path):
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(ManifestError, match="'tiny'.*'../../escaped.pth'"):
        _fetch(replace(entry, file="../../escaped.pth"), dest)
    assert not (tmp_path / "a" / "escaped.pth").exists() and not (tmp_path / "a" / "escaped.pth.part").exists()
    assert server.config.requests == []


def test_part_file_linked_outside_dest_is_refused(server, entry, tmp_path):
    outside, dest = tmp_path / "outside.bin", tmp_path / "dest"
    dest.mkdir()
    (dest / (entry.file + ".part")).symlink_to(outside)
    with pytest.raises(ManifestError, match="symbolic link"):
        _fetch(entry, dest)
    assert not outside.exists()
