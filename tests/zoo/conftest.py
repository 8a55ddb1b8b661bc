"""A Range-capable local HTTP server and manifest entries pointing at it."""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from projects.mmdet3d_plugin.zoo.manifest import CheckpointEntry

_spec = importlib.util.spec_from_file_location("zoo_range_server", Path(__file__).with_name("range_server.py"))
range_server = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = range_server
_spec.loader.exec_module(range_server)

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB + 4 bytes: several read chunks


@pytest.fixture()
def server():
    config = range_server.ServerConfig(files={"/ckpt.pth": PAYLOAD})
    srv = range_server.RangeServer(config)
    yield srv
    srv.close()


@pytest.fixture()
def entry(server) -> CheckpointEntry:
    """A manifest entry for ``/ckpt.pth`` with the right size and sha256."""
    return CheckpointEntry(
        name="tiny", kind="backbone", file="tiny-ckpt.pth", urls=(server.url("/ckpt.pth"),),
        direct=True, size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        sha256_prefix=None, config=None, source="test", note="")


@pytest.fixture()
def unhashed(entry) -> CheckpointEntry:
    return replace(entry, size=None, sha256=None)


@pytest.fixture()
def payload() -> bytes:
    return PAYLOAD
