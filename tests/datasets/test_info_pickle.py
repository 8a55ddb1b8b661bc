"""Info files are read by a restricted unpickler: data only, never code, errors name the file."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from projects.mmdet3d_plugin.datasets.info_pickle import (
    InfoFileError, UnsafePickleError, load_info_pickle)
from projects.mmdet3d_plugin.datasets.nuscenes_dataset import CustomNuScenesDataset, read_info_file


class _RunsCode:
    """Unpickling this calls ``os.system`` (what a crafted ann_file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _write(path: Path, obj: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_crafted_info_file_runs_no_code_and_names_the_global(tmp_path):
    marker = tmp_path / "pwned"
    ann = _write(tmp_path / "evil.pkl", {"infos": [_RunsCode(marker)], "metadata": {}})
    with pytest.raises(UnsafePickleError) as info:
        read_info_file(ann)
    assert not marker.exists(), "the crafted pickle ran code"
    assert str(ann) in str(info.value) and f"{os.system.__module__}.system" in str(info.value)
    with pytest.raises(UnsafePickleError, match="evil.pkl"):  # the dataset reads it the same way
        CustomNuScenesDataset(ann_file=str(ann), pipeline=[], data_root=str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"cbuiltins\neval\n(S'1'\ntR.", b"cbuiltins\ngetattr\n(S'x'\nS'y'\ntR."])
def test_builtins_beyond_plain_types_are_refused(tmp_path, payload):
    path = tmp_path / "b.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="builtins.(eval|getattr)"):
        load_info_pickle(path)


def test_protocol_2_bytes_admit_only_the_latin1_codec(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"c_codecs\nencode\n(S'x'\nS'zlib'\ntR.")
    with pytest.raises(UnsafePickleError, match="codec.pkl.*zlib"):
        load_info_pickle(path)


def _sample_data() -> dict:
    arrays = {"gt_boxes": np.arange(14, dtype=np.float64).reshape(2, 7), "gt_names": np.array(["car", "bus"]),
              "flags": np.array([True, False]), "f32": np.ones((3, 2), np.float32)[:, 0]}
    extras = [np.float64(1.5), np.int64(3), {1, 2}, frozenset({3}), (1, 2), b"xy", None, 1 + 2j, bytearray(b"z")]
    return {"infos": [dict(arrays, extras=extras, token="t")], "metadata": {"version": "v1.0-mini"}}


def _assert_same(got: dict, expected: dict) -> None:
    info, want = got["infos"][0], expected["infos"][0]
    for key in ("gt_boxes", "gt_names", "flags", "f32"):
        np.testing.assert_array_equal(info[key], want[key])
        assert info[key].dtype == want[key].dtype
    assert info["extras"] == want["extras"] and got["metadata"] == expected["metadata"]


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_numpy_infos_of_every_protocol_load(tmp_path, protocol):
    data = _sample_data()  # protocol 2 is what mmcv.dump (StreamPETR infos) writes
    _assert_same(load_info_pickle(_write(tmp_path / "i.pkl", data, protocol)), data)


def test_numpy_2_module_names_load(tmp_path):
    """numpy 2 writes ``numpy._core.*``; numpy 1 ``numpy.core.*``: both read under either."""
    data = _sample_data()
    text = pickle.dumps(data, protocol=2)
    assert b"numpy.core.multiarray" in text
    swapped = text.replace(b"cnumpy.core.", b"cnumpy._core.")
    _assert_same(load_info_pickle(_write_bytes(tmp_path / "np2.pkl", swapped)), data)

    class _Frombuffer(pickle.Pickler):  # the protocol-5 reduction of a contiguous array, as text
        def reducer_override(self, obj):
            if type(obj) is np.ndarray:
                return np.core.numeric._frombuffer, (obj.tobytes(), obj.dtype, obj.shape, "C")
            return NotImplemented

    buffer = io.BytesIO()
    _Frombuffer(buffer, protocol=2).dump(data)
    for spelling in (b"numpy.core.numeric", b"numpy._core.numeric"):
        raw = buffer.getvalue().replace(b"cnumpy.core.numeric", b"c" + spelling)
        _assert_same(load_info_pickle(_write_bytes(tmp_path / "fb.pkl", raw)), data)


def _write_bytes(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path


def test_converter_infos_load(synthetic_infos):
    for path in synthetic_infos.values():
        infos, metadata = read_info_file(path)
        assert infos and metadata["version"] == "v1.0-mini"


@pytest.mark.parametrize("content, what", [
    (b"", "is empty"),
    (b"infos: not a pickle\n", "not a pickle"),
    (pickle.dumps({"infos": [np.zeros(100)]})[:40], "truncated"),
], ids=["empty", "text", "truncated"])
def test_unreadable_info_files_name_the_file(tmp_path, content, what):
    path = _write_bytes(tmp_path / "broken_infos.pkl", content)
    with pytest.raises(InfoFileError) as info:
        read_info_file(path)
    assert str(path) in str(info.value) and what in str(info.value)


def test_a_pickle_that_is_not_an_info_file_is_named(tmp_path):
    path = _write(tmp_path / "list.pkl", [1, 2])
    with pytest.raises(InfoFileError, match=r"list\.pkl holds list; expected dict\(infos="):
        read_info_file(path)


def test_dtype_classes_and_object_arrays_load_and_stay_restricted(tmp_path):
    data = {"infos": [{"cls": type(np.dtype("f4")), "obj": np.array([1, "a"], dtype=object)}]}
    info = load_info_pickle(_write(tmp_path / "d.pkl", data))["infos"][0]
    assert info["cls"] is type(np.dtype("f4")) and list(info["obj"]) == [1, "a"]
    marker = tmp_path / "pwned"
    evil = {"infos": [np.array([_RunsCode(marker)], dtype=object)]}
    with pytest.raises(UnsafePickleError, match="system"):
        load_info_pickle(_write(tmp_path / "o.pkl", evil))
    assert not marker.exists()
