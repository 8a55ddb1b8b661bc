"""tools/download_ckpts.py: listing, downloading through a local server, error exit codes."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from projects.mmdet3d_plugin.paths import REPO_ROOT

ROOT = REPO_ROOT


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cli = _load("download_ckpts_cli", ROOT / "tools" / "download_ckpts.py")
range_server = _load("cli_range_server", ROOT / "tests" / "zoo" / "range_server.py")
PAYLOAD = b"checkpoint bytes " * 10000


@pytest.fixture()
def server():
    srv = range_server.RangeServer(range_server.ServerConfig(files={"/a.pth": PAYLOAD}))
    yield srv
    srv.close()


@pytest.fixture()
def manifest(server, tmp_path) -> Path:
    good = dict(name="a", kind="backbone", file="a.pth", urls=[server.url("/a.pth")],
                size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    gone = dict(name="gone", kind="detector", file="gone.pth", urls=[server.url("/gone.pth")])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(dict(schema_version=1, checkpoints=[good, gone])))
    return path


def test_list_shows_every_entry_of_the_shipped_manifest(capsys):
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["name", "kind", "download", "check"]
    for name in ("streampetr_r50_428q_nui_60e", "raydn_r50_428q_nui_60e", "resnet18",
                 "nuimages_r50_cascade_mask_rcnn", "harmodistill_raydn_r18_428q_24e"):
        assert name in out
    assert "sha256 f37072fd..." in out and "by hand (share page)" in out


def test_download_by_name_and_by_file_name(manifest, tmp_path, capsys):
    dest = tmp_path / "ckpts"
    assert cli.main(["a", "--dest", str(dest), "--manifest", str(manifest), "--no-progress"]) == 0
    assert (dest / "a.pth").read_bytes() == PAYLOAD
    assert "a: downloaded" in capsys.readouterr().out
    assert cli.main(["a.pth", "--dest", str(dest), "--manifest", str(manifest), "--no-progress"]) == 0
    assert "a: present" in capsys.readouterr().out


def test_404_and_unknown_names_fail_with_status_1(manifest, tmp_path, capsys):
    args = ["--dest", str(tmp_path / "ckpts"), "--manifest", str(manifest), "--no-progress"]
    assert cli.main(["gone", *args]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert cli.main(["nope", *args]) == 1
    assert "not in the model-zoo manifest" in capsys.readouterr().err


def test_all_reports_unverified_files(manifest, tmp_path, capsys):
    assert cli.main(["--all", "--dest", str(tmp_path), "--manifest", str(manifest), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "verified against the manifest" in captured.out
    assert "1 of 2 checkpoints failed" in captured.err


def test_escaping_manifest_entry_writes_nothing_outside_dest(server, tmp_path, capsys):
    evil = dict(name="evil", kind="backbone", file="../../escaped.pth", urls=[server.url("/a.pth")])
    manifest = tmp_path / "evil.json"
    manifest.write_text(json.dumps(dict(schema_version=1, checkpoints=[evil])))
    dest = tmp_path / "x" / "y" / "dest"
    assert cli.main(["evil", "--dest", str(dest), "--manifest", str(manifest), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "'evil'" in err and "../../escaped.pth" in err and str(manifest) in err
    assert not list(tmp_path.rglob("escaped.pth*")) and server.config.requests == []


@pytest.mark.parametrize("text, problem", [
    ("{broken", "is not valid JSON"),
    ('{"schema_version": 1, "checkpoints": [{"name": "a", "kind": "backbone", "file": "a.pth"}]}',
     "missing keys ['urls']"),
    ('{"schema_version": 1, "checkpoints": [{"name": "a", "kind": "backbone", "file": "a.pth", "urls": 5}]}',
     "urls must be a non-empty list"),
])
def test_malformed_manifest_is_one_clear_error(tmp_path, capsys, text, problem):
    manifest = tmp_path / "bad.json"
    manifest.write_text(text)
    for args in (["--list"], ["a"]):
        assert cli.main([*args, "--manifest", str(manifest), "--dest", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(manifest) in err and problem in err
        assert "Traceback" not in err


def test_missing_manifest_is_one_clear_error(tmp_path, capsys):
    assert cli.main(["--list", "--manifest", str(tmp_path / "none.json")]) == 1
    assert "model-zoo manifest not found" in capsys.readouterr().err
