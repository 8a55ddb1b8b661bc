"""LoadLidarDepthMaps: LiDAR points projected into the augmented cameras, nearest depth per cell."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from projects.mmdet3d_plugin.core import batch_contract as contract
from projects.mmdet3d_plugin.datasets.collate import collate_samples
from projects.mmdet3d_plugin.datasets.pipelines.bev_aug import GlobalRotScaleTransImage
from projects.mmdet3d_plugin.datasets.pipelines.formatting import Collect3D, PETRFormatBundle3D
from projects.mmdet3d_plugin.datasets.pipelines.image_aug import ResizeCropFlipRotImage
from projects.mmdet3d_plugin.datasets.pipelines.lidar_depth import LoadLidarDepthMaps, read_lidar_points
from projects.mmdet3d_plugin.datasets.pipelines.loading import LoadMultiViewImageFromFiles

HALF_SIZE = dict(resize_lim=(0.5, 0.5), final_dim=(48, 80), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
                 H=96, W=160, rand_flip=False)


def lidar_points_at(results: dict[str, Any], cam: int, pixels_and_depths: list[tuple[float, float, float]]
                    ) -> np.ndarray:
    """``(P, 3)`` LiDAR points seen by camera ``cam`` at pixel ``(u, v)`` and depth ``d`` each."""
    k = np.asarray(results["intrinsics"][cam])[:3, :3]
    cam_points = [np.linalg.inv(k) @ np.array([u * d, v * d, d]) for u, v, d in pixels_and_depths]
    hom = np.c_[np.array(cam_points), np.ones(len(cam_points))]
    return (hom @ np.linalg.inv(results["extrinsics"][cam]).T)[:, :3]


def with_sweep(results: dict[str, Any], points: np.ndarray, path: Path) -> dict[str, Any]:
    """``results`` with ``lidar_path`` naming a nuScenes-format sweep of ``points``."""
    sweep = np.zeros((len(points), 5), dtype=np.float32)
    sweep[:, :3] = points
    sweep[:, 4] = np.arange(len(points)) % 32  # ring
    sweep.tofile(path)
    return dict(results, lidar_path=str(path))


@pytest.fixture
def rig(rig_results: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The two-camera rig (96 x 160 images, see conftest.py)."""
    return rig_results()


def test_a_point_lands_in_its_cell_with_its_depth(rig: dict, tmp_path: Path) -> None:
    results = with_sweep(rig, lidar_points_at(rig, 0, [(100.0, 40.0, 12.0)]), tmp_path / "a.pcd.bin")
    maps = LoadLidarDepthMaps(stride=16)(results)["depth_maps"]
    assert maps.dtype == np.float32 and maps.shape == (2, 96 // 16, 160 // 16)
    assert maps[0, 40 // 16, 100 // 16] == pytest.approx(12.0, abs=1e-4)
    assert np.count_nonzero(maps) == 1


def test_the_nearest_point_of_a_cell_wins(rig: dict, tmp_path: Path) -> None:
    points = lidar_points_at(rig, 0, [(100.0, 40.0, 12.0), (101.0, 41.0, 8.0), (103.0, 35.0, 30.0)])
    maps = LoadLidarDepthMaps(stride=16)(with_sweep(rig, points, tmp_path / "b.pcd.bin"))["depth_maps"]
    assert maps[0, 2, 6] == pytest.approx(8.0, abs=1e-4) and np.count_nonzero(maps) == 1


def test_points_behind_the_camera_outside_the_image_or_the_depth_range_are_dropped(rig: dict,
                                                                                    tmp_path: Path) -> None:
    points = lidar_points_at(rig, 0, [(100.0, 40.0, -6.0), (170.0, 40.0, 9.0), (50.0, 20.0, 0.05),
                                      (20.0, 85.0, 45.0)])
    results = with_sweep(rig, points, tmp_path / "c.pcd.bin")
    assert np.count_nonzero(LoadLidarDepthMaps(stride=16, max_depth=40.0)(dict(results))["depth_maps"]) == 0
    kept = LoadLidarDepthMaps(stride=16)(dict(results))["depth_maps"]
    assert np.count_nonzero(kept) == 1 and kept[0, 5, 1] == pytest.approx(45.0, abs=1e-3)


def test_the_cell_follows_an_image_resize(rig: dict, tmp_path: Path) -> None:
    results = with_sweep(rig, lidar_points_at(rig, 0, [(100.0, 40.0, 12.0)]), tmp_path / "d.pcd.bin")
    resized = ResizeCropFlipRotImage(HALF_SIZE, with_2d=False, training=False)(results)
    assert not np.allclose(resized["lidar2img"][0], rig["lidar2img"][0])
    maps = LoadLidarDepthMaps(stride=8)(resized)["depth_maps"]
    assert maps.shape == (2, 6, 10)
    assert maps[0, 20 // 8, 50 // 8] == pytest.approx(12.0, abs=1e-4) and np.count_nonzero(maps) == 1


def test_the_maps_do_not_depend_on_where_the_bev_augmentation_runs(rig: dict, tmp_path: Path) -> None:
    points = lidar_points_at(rig, 0, [(100.0, 40.0, 12.0), (20.0, 70.0, 5.0)])
    results = with_sweep(rig, points, tmp_path / "e.pcd.bin")
    before = LoadLidarDepthMaps(stride=16)(dict(results))["depth_maps"]
    bev = GlobalRotScaleTransImage(rot_range=(0.3, 0.3), scale_ratio_range=(1.05, 1.05))(dict(results))
    np.testing.assert_array_equal(LoadLidarDepthMaps(stride=16)(bev)["depth_maps"], before)


def test_a_missing_sweep_names_its_path(rig: dict, tmp_path: Path) -> None:
    missing = tmp_path / "samples" / "LIDAR_TOP" / "none.pcd.bin"
    with pytest.raises(FileNotFoundError, match="LiDAR sweep not found: .*none.pcd.bin"):
        LoadLidarDepthMaps()(dict(rig, lidar_path=str(missing)))
    with pytest.raises(KeyError, match="lidar_path"):
        LoadLidarDepthMaps()(dict(rig))
    (tmp_path / "odd.bin").write_bytes(np.zeros(7, dtype=np.float32).tobytes())
    with pytest.raises(ValueError, match="odd.bin.*multiple of load_dim=5"):
        read_lidar_points(tmp_path / "odd.bin")


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        LoadLidarDepthMaps(stride=0)
    with pytest.raises(ValueError, match="min_depth"):
        LoadLidarDepthMaps(min_depth=5.0, max_depth=2.0)


def test_depth_maps_are_formatted_collected_and_stacked(rig: dict, tmp_path: Path) -> None:
    results = with_sweep(rig, lidar_points_at(rig, 0, [(100.0, 40.0, 12.0)]), tmp_path / "f.pcd.bin")
    results = LoadLidarDepthMaps(stride=16)(results)
    results["pad_shape"] = results["img_shape"]
    keys = ["img", "lidar2img", "depth_maps"]
    formatted = PETRFormatBundle3D([str(i) for i in range(10)], collect_keys=["lidar2img"])(results)
    sample = Collect3D(keys=keys)(formatted)
    assert sample["depth_maps"].dtype == torch.float32 and sample["depth_maps"].shape == (2, 6, 10)
    batch = collate_samples([sample, sample])
    assert batch["depth_maps"].shape == (2, 2, 6, 10)
    contract.check_batch(batch)
    assert "depth_maps" not in PETRFormatBundle3D([], collect_keys=[], with_gt=False)(dict(results))


def test_a_generated_world_sample_has_depth_in_every_camera(world_dataset: Any) -> None:
    results = world_dataset.get_data_info(0)
    assert Path(results["lidar_path"]).is_file()
    results = LoadMultiViewImageFromFiles(to_float32=True)(results)
    conf = dict(HALF_SIZE, final_dim=(96, 176), H=225, W=400, resize_lim=(0.44, 0.44))
    results = ResizeCropFlipRotImage(conf, with_2d=False, training=False)(results)
    maps = LoadLidarDepthMaps(stride=16, min_depth=1.0)(results)["depth_maps"]
    assert maps.shape == (6, 6, 11)
    filled = (maps > 0).reshape(6, -1).sum(axis=1)
    assert (filled > 0).all(), f"cells with depth per camera: {filled}"
    assert maps[maps > 0].min() > 1.0 and maps.max() <= 71.0
