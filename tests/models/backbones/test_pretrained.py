"""Pretrained-weight resolution: cache look-up, real HTTP download, offline errors, keys."""
from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.models.backbones import pretrained
from projects.mmdet3d_plugin.models.backbones.pretrained import (
    PretrainedWeightsUnavailableError,
    download_file,
    pretrained_init_args,
    read_pretrained_state_dict,
    resolve_checkpoint,
    select_backbone_keys,
    torchvision_url,
)
from projects.mmdet3d_plugin.models.backbones.resnet import ResNet


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def isolated_caches(tmp_path, monkeypatch) -> Path:
    """Run in an empty working directory with TORCH_HOME inside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base signature)
        """Keep test output clean."""


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over ``tmp_path/served``; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_torchvision_urls_are_the_official_ones():
    assert torchvision_url("resnet18") == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert torchvision_url("resnet50") == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    with pytest.raises(ValueError, match="torchvision://resnet34"):
        torchvision_url("resnet43")


def test_offline_error_names_url_and_destination(isolated_caches, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/resnet18-f37072fd.pth"
    monkeypatch.setattr(pretrained, "TORCHVISION_URLS", {"resnet18": url})
    model = ResNet(depth=18, base_channels=4, pretrained="torchvision://resnet18")
    with pytest.raises(PretrainedWeightsUnavailableError) as info:
        model.init_weights()
    expected_path = isolated_caches / "torch_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    message = str(info.value)
    assert url in message and str(expected_path) in message
    assert not expected_path.exists() and not expected_path.with_name(expected_path.name + ".part").exists()


def test_download_writes_file_atomically(tmp_path, file_server):
    folder, base = file_server
    payload = bytes(range(256)) * 4000
    (folder / "w.pth").write_bytes(payload)
    target = download_file(f"{base}/w.pth", tmp_path / "cache" / "w.pth", progress=False)
    assert target.read_bytes() == payload
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.pth"]


def test_http_error_is_reported(tmp_path, file_server):
    _, base = file_server
    with pytest.raises(PretrainedWeightsUnavailableError, match="HTTP 404"):
        download_file(f"{base}/missing.pth", tmp_path / "missing.pth", progress=False)
    assert not (tmp_path / "missing.pth").exists()


def test_torchvision_name_downloads_then_uses_cache(isolated_caches, monkeypatch, file_server):
    folder, base = file_server
    source = ResNet(depth=18, base_channels=4)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    state.update({"fc.weight": torch.zeros(10, 32), "fc.bias": torch.zeros(10)})  # as torchvision's files
    torch.save(state, folder / "resnet18-f37072fd.pth")
    monkeypatch.setattr(pretrained, "TORCHVISION_URLS", {"resnet18": f"{base}/resnet18-f37072fd.pth"})
    model = ResNet(depth=18, base_channels=4, init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet18"))
    model.init_weights()
    assert torch.equal(model.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    (folder / "resnet18-f37072fd.pth").unlink()
    assert resolve_checkpoint("torchvision://resnet18").is_file()


def test_ckpts_folder_is_looked_up_first(isolated_caches, monkeypatch):
    monkeypatch.setattr(pretrained, "TORCHVISION_URLS", {"resnet18": f"http://127.0.0.1:{_closed_port()}/r18.pth"})
    (isolated_caches / "ckpts").mkdir()
    torch.save({"a": torch.zeros(1)}, isolated_caches / "ckpts" / "r18.pth")
    assert resolve_checkpoint("torchvision://resnet18") == Path("ckpts") / "r18.pth"


def test_missing_local_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        read_pretrained_state_dict(str(tmp_path / "absent.pth"))


def test_select_backbone_keys():
    w = torch.zeros(1)
    detector = {"img_backbone.conv1.weight": w, "img_neck.x": w, "pts_bbox_head.y": w}
    assert list(select_backbone_keys(detector)) == ["conv1.weight"]
    assert list(select_backbone_keys({"module.backbone.conv1.weight": w})) == ["conv1.weight"]
    assert list(select_backbone_keys({"conv1.weight": w, "fc.bias": w})) == ["conv1.weight", "fc.bias"]
    with pytest.raises(KeyError, match="prefix 'encoder.'"):
        select_backbone_keys(detector, prefix="encoder.")


def test_pretrained_init_args_validation():
    assert pretrained_init_args(None, None, "ResNet") is None
    assert pretrained_init_args(None, "x.pth", "ResNet")["checkpoint"] == "x.pth"
    with pytest.raises(ValueError, match="not both"):
        pretrained_init_args(dict(type="Pretrained", checkpoint="a"), "b", "ResNet")
    with pytest.raises(ValueError, match="did you mean 'prefix'"):
        pretrained_init_args(dict(type="Pretrained", checkpoint="a", prefx="b."), None, "ResNet")
    with pytest.raises(ValueError, match="only init_cfg=dict"):
        pretrained_init_args(dict(type="Kaiming"), None, "ResNet")
