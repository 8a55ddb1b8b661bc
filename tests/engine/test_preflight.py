"""Preflight: a wrong data_root, a corrupt image, an unreadable info file or missing nuScenes
tables fail before a run writes anything, with errors naming the file and the config key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from projects.mmdet3d_plugin.datasets.evaluation.nusc_eval import check_tables
from projects.mmdet3d_plugin.datasets.info_pickle import InfoFileError
from projects.mmdet3d_plugin.engine import runner
from projects.mmdet3d_plugin.engine.preflight import check_images, preflight
from projects.mmdet3d_plugin.engine.runner import build_dataset, build_model, load_config, train
from projects.mmdet3d_plugin.engine.trainer_factory import LaunchEnv
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
TINY_CONFIG = REPO / "tests" / "engine" / "configs" / "tiny_raydn.py"
CPU = LaunchEnv(accelerator="cpu", devices=1, num_nodes=1, world_size=1)


def _cfg(root: Path, infos: dict[str, Path], train_ann: Path | None = None, **overrides):
    options = {"data.train.data_root": str(root), "data.train.ann_file": str(train_ann or infos["train"])}
    for split in ("val", "test"):
        options.update({f"data.{split}.data_root": str(root), f"data.{split}.ann_file": str(infos["val"])})
    options.update(overrides)
    return load_config(TINY_CONFIG, options)


def _root_without_tables(world: Path, tmp_path: Path) -> Path:
    """A data_root whose images are the world's but which holds no nuScenes tables."""
    root = tmp_path / "images_only"
    root.mkdir()
    (root / "samples").symlink_to(world / "samples", target_is_directory=True)
    return root


def test_wrong_data_root_fails_before_the_work_dir_is_written(synthetic_infos, tmp_path):
    wrong = tmp_path / "not_the_nuscenes_root"
    work_dir = tmp_path / "work"
    with pytest.raises(FileNotFoundError) as info:
        train(_cfg(wrong, synthetic_infos), work_dir, env=CPU, enable_progress_bar=False)
    message = str(info.value)
    assert "data.train" in message and "data_root" in message and str(wrong) in message
    assert str(synthetic_infos["train"]) in message and "samples/" in message
    assert not work_dir.exists(), "the run wrote to the work dir before failing"


def test_unreadable_info_file_fails_naming_it_before_the_work_dir_is_written(
        synthetic_world, synthetic_infos, tmp_path):
    empty = tmp_path / "empty_infos.pkl"
    empty.write_bytes(b"")
    with pytest.raises(InfoFileError, match="empty_infos.pkl.*is empty"):
        train(_cfg(synthetic_world, synthetic_infos, train_ann=empty), tmp_path / "work", env=CPU,
              enable_progress_bar=False)
    assert not (tmp_path / "work").exists()


def test_truncated_first_image_names_its_path(synthetic_world, synthetic_infos, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_world / "samples", root / "samples")
    dataset = build_dataset(_cfg(root, synthetic_infos), "train")
    first = Path(dataset.get_data_info(0)["img_filename"][2])
    first.write_bytes(first.read_bytes()[:500])
    with pytest.raises(OSError, match="data.train.*cannot decode camera image") as info:
        check_images(dataset, "train")
    assert str(first) in str(info.value)
    assert check_images(build_dataset(_cfg(synthetic_world, synthetic_infos), "train"), "train", 2) == 12


def test_test_without_tables_fails_before_inference(synthetic_world, synthetic_infos, tmp_path):
    root = _root_without_tables(synthetic_world, tmp_path)
    cfg = _cfg(root, synthetic_infos)
    checkpoint = tmp_path / "model.pth"
    torch.save(build_model(cfg, init_weights=False).state_dict(), checkpoint)
    out_dir = tmp_path / "test_out"
    with pytest.raises(FileNotFoundError, match=r"data\.test: nuScenes tables .*v1\.0-mini does not exist"):
        runner.test(cfg, checkpoint, out_dir, env=CPU, enable_progress_bar=False)
    assert not out_dir.exists(), "inference ran (and wrote its submission) before the tables were checked"


def test_training_with_evaluation_checks_the_val_tables(synthetic_world, synthetic_infos, tmp_path):
    root = _root_without_tables(synthetic_world, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data\.val: nuScenes tables"):
        train(_cfg(root, synthetic_infos), tmp_path / "work", env=CPU, enable_progress_bar=False)
    assert not (tmp_path / "work").exists()
    preflight(build_dataset(_cfg(root, synthetic_infos), "val"), "val", evaluate=False)  # no tables needed


def test_missing_tables_and_versions_are_named(synthetic_world, tmp_path):
    assert check_tables(synthetic_world, "v1.0-mini") == synthetic_world / "v1.0-mini"
    partial = tmp_path / "v1.0-mini"
    shutil.copytree(synthetic_world / "v1.0-mini", partial)
    (partial / "sample_annotation.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['sample_annotation.json'\]"):
        check_tables(tmp_path, "v1.0-mini")
    with pytest.raises(ValueError, match="no default evaluation split"):
        check_tables(synthetic_world, "v1.0-test")
    with pytest.raises(ValueError, match="metadata\\['version'\\]"):
        check_tables(synthetic_world, None)
