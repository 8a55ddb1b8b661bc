"""The shipped manifest and the helpers around it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmengine import Config

from projects.mmdet3d_plugin.models.backbones.pretrained import TORCHVISION_URLS
from projects.mmdet3d_plugin.paths import REPO_ROOT
from projects.mmdet3d_plugin.zoo.manifest import (ManifestError, find_entry, load_manifest,
                                                  missing_checkpoint_message)


def test_shipped_manifest_is_consistent():
    entries = load_manifest()
    assert {"streampetr_r50_428q_nui_60e", "raydn_r50_428q_nui_60e", "harmodistill_raydn_r18_428q_24e",
            "nuimages_r50_cascade_mask_rcnn", "resnet18", "resnet34", "resnet50", "resnet101"} <= set(entries)
    for entry in entries.values():
        assert entry.urls and all(url.startswith("https://") for url in entry.urls)
        assert entry.urls[0].endswith(entry.file) or not entry.direct
        if entry.config is not None:
            assert (REPO_ROOT / entry.config).is_file(), entry.config
        if entry.sha256_prefix:  # the publisher's convention: name-<sha256 prefix>.pth
            assert Path(entry.file).stem.endswith(entry.sha256_prefix)
    for arch, url in TORCHVISION_URLS.items():  # agrees with the backbone loader
        assert entries[arch].urls == (url,)


def test_config_checkpoints_are_in_the_manifest():
    entries = load_manifest()
    cfg = Config.fromfile(str(REPO_ROOT / "projects/configs/RayDN/raydn_r50_704_bs2_seq_428q_nui_60e.py"))
    name = "cascade_mask_rcnn_r50_fpn_coco-20e_20e_nuim_20201009_124951-40963960.pth"
    assert cfg.model.img_backbone.init_cfg.checkpoint == f"ckpts/{name}"
    assert find_entry(entries, f"ckpts/{name}").name == "nuimages_r50_cascade_mask_rcnn"


def test_missing_checkpoint_message_gives_the_command():
    message = missing_checkpoint_message("ckpts/resnet18-f37072fd.pth")
    assert "python tools/download_ckpts.py resnet18 --dest ckpts" in message
    manual = missing_checkpoint_message("ckpts/raydn_r50_704_bs2_seq_428q_nui_60e.pth")
    assert "sharepoint.com" in manual and "save the file as" in manual
    unknown = missing_checkpoint_message("ckpts/nothing.pth")
    assert "not in the model zoo" in unknown and "--list" in unknown


def test_unknown_name_lists_close_matches():
    with pytest.raises(ManifestError, match="did you mean.*resnet18"):
        find_entry(load_manifest(), "resnet81")


@pytest.mark.parametrize("bad, match", [
    (dict(kind="weights"), "kind must be"),
    (dict(sha256="ABC"), "lower-case hex"),
    (dict(sha256="ab" * 10), "64 hex digits"),
    (dict(sizes=3), "unknown keys"),
])
def test_malformed_entries_are_rejected(tmp_path, bad, match):
    raw = dict(name="x", kind="backbone", file="x.pth", urls=["https://e/x.pth"])
    raw.update(bad)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(dict(schema_version=1, checkpoints=[raw])))
    with pytest.raises(ManifestError, match=match):
        load_manifest(path)


@pytest.mark.parametrize("bad, match", [
    (dict(name=3), "name must be a non-empty string"),
    (dict(urls="https://e/x.pth"), "urls must be a non-empty list"),
    (dict(urls=[]), "urls must be a non-empty list"),
    (dict(urls=[7]), "urls must be a non-empty list"),
    (dict(direct="yes"), "direct must be true or false"),
    (dict(size="12"), "size must be a byte count or null"),
    (dict(size=True), "size must be a byte count or null"),
    (dict(size=-1), "size must be a byte count >= 0"),
    (dict(sha256=5), "sha256 must be 64 lower-case hex digits or null"),
    (dict(config=["a.py"]), "config must be a repository-relative path or null"),
])
def test_wrong_types_are_rejected_naming_the_file_and_field(tmp_path, bad, match):
    raw = dict(name="x", kind="backbone", file="x.pth", urls=["https://e/x.pth"])
    raw.update(bad)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(dict(schema_version=1, checkpoints=[raw])))
    with pytest.raises(ManifestError, match=match) as info:
        load_manifest(path)
    assert f"{path} checkpoints[0]" in str(info.value)


@pytest.mark.parametrize("file", ["../../escaped.pth", "/tmp/abs.pth", "sub/x.pth", "..", "", "a\\..\\b.pth",
                                  "C:x.pth"])
def test_file_names_that_leave_the_destination_are_rejected(tmp_path, file):
    raw = dict(name="evil", kind="backbone", file=file, urls=["https://e/x.pth"])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(dict(schema_version=1, checkpoints=[raw])))
    with pytest.raises(ManifestError, match=r"checkpoints\[0\] \('evil'\): file must be a plain file name"):
        load_manifest(path)


@pytest.mark.parametrize("text, match", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"schema_version": 1, "checkpoints": {"a": 1}}', "'checkpoints' must be a list"),
    ('{"schema_version": 1, "checkpoints": ["x.pth"]}', r"checkpoints\[0\]: an entry must be a JSON object"),
])
def test_malformed_manifest_files_are_named(tmp_path, text, match):
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=match) as info:
        load_manifest(path)
    assert str(path) in str(info.value)
