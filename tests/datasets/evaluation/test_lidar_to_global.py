"""LiDAR → global transform of boxes: poses, size order, yaw quaternion, velocity."""
from __future__ import annotations

import numpy as np
import pytest
from nuscenes.utils.data_classes import Box
from pyquaternion import Quaternion

from projects.mmdet3d_plugin.datasets.evaluation.lidar_to_global import (
    compose_with_yaw,
    lidar_boxes_to_global,
    lidar_to_global_pose,
)


def make_info(
    sensor_yaw: float = -np.pi / 2,
    ego_yaw: float = np.pi / 6,
    sensor_tilt: Quaternion | None = None,
) -> dict:
    """An info with a LiDAR mounted like nuScenes' (rotated about z) on an ego at some pose."""
    sensor = Quaternion(axis=[0, 0, 1], radians=sensor_yaw)
    if sensor_tilt is not None:
        sensor = sensor * sensor_tilt
    return {
        "token": "sample-a",
        "lidar2ego_translation": [0.94, 0.0, 1.84],
        "lidar2ego_rotation": list(sensor.elements),
        "ego2global_translation": [411.3, 1180.9, 0.0],
        "ego2global_rotation": list(Quaternion(axis=[0, 0, 1], radians=ego_yaw).elements),
    }


def global_box_to_lidar(box: Box, info: dict) -> Box:
    """Independent oracle: the devkit's Box moved global → ego → LiDAR."""
    box = box.copy()
    box.translate(-np.array(info["ego2global_translation"]))
    box.rotate(Quaternion(info["ego2global_rotation"]).inverse)
    box.translate(-np.array(info["lidar2ego_translation"]))
    box.rotate(Quaternion(info["lidar2ego_rotation"]).inverse)
    return box


def test_box_at_known_global_pose_round_trips() -> None:
    info = make_info()
    global_box = Box(
        center=[420.0, 1175.0, 1.2],
        size=[1.9, 4.6, 1.7],  # w, l, h
        orientation=Quaternion(axis=[0, 0, 1], radians=2.3),
        velocity=(3.0, -1.5, 0.0),
    )
    lidar_box = global_box_to_lidar(global_box, info)
    w, l, h = lidar_box.wlh
    yaw = lidar_box.orientation.yaw_pitch_roll[0]
    boxes = np.array([[*lidar_box.center, l, w, h, yaw, *lidar_box.velocity[:2]]])

    world = lidar_boxes_to_global(boxes, info)

    np.testing.assert_allclose(world.translation[0], global_box.center, atol=1e-9)
    np.testing.assert_allclose(world.size[0], [1.9, 4.6, 1.7])
    assert Quaternion.absolute_distance(Quaternion(world.rotation[0]), global_box.orientation) < 1e-9
    np.testing.assert_allclose(world.velocity[0], [3.0, -1.5], atol=1e-9)


def test_identity_poses_give_size_wlh_and_yaw_quaternion() -> None:
    info = make_info(sensor_yaw=0.0, ego_yaw=0.0)
    info["lidar2ego_translation"] = [0.0, 0.0, 0.0]
    info["ego2global_translation"] = [0.0, 0.0, 0.0]
    boxes = np.array([[1.0, 2.0, 3.0, 4.0, 2.0, 1.5, 0.7, 0.0, 0.0]])  # l=4, w=2, h=1.5

    world = lidar_boxes_to_global(boxes, info)

    np.testing.assert_allclose(world.translation[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(world.size[0], [2.0, 4.0, 1.5])
    np.testing.assert_allclose(world.rotation[0], Quaternion(axis=[0, 0, 1], radians=0.7).elements, atol=1e-12)


def test_velocity_is_rotated_not_translated() -> None:
    info = make_info(sensor_yaw=0.0, ego_yaw=np.pi / 2)
    boxes = np.array([[0.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0, 1.0, 0.0]])

    world = lidar_boxes_to_global(boxes, info)

    np.testing.assert_allclose(world.velocity[0], [0.0, 1.0], atol=1e-12)
    assert Quaternion(world.rotation[0]).yaw_pitch_roll[0] == pytest.approx(np.pi / 2)


def test_matches_devkit_box_chain_with_a_tilted_sensor() -> None:
    rng = np.random.default_rng(0)
    info = make_info(sensor_tilt=Quaternion(axis=[1.0, 0.3, 0.0], radians=0.05))
    boxes = np.concatenate(
        [rng.uniform(-40, 40, (5, 3)), rng.uniform(0.5, 5, (5, 3)), rng.uniform(-np.pi, np.pi, (5, 1)),
         rng.uniform(-5, 5, (5, 2))],
        axis=1,
    )

    world = lidar_boxes_to_global(boxes, info)

    for k, (x, y, z, l, w, h, yaw, vx, vy) in enumerate(boxes):
        box = Box([x, y, z], [w, l, h], Quaternion(axis=[0, 0, 1], radians=yaw), velocity=(vx, vy, 0.0))
        box.rotate(Quaternion(info["lidar2ego_rotation"]))
        box.translate(np.array(info["lidar2ego_translation"]))
        box.rotate(Quaternion(info["ego2global_rotation"]))
        box.translate(np.array(info["ego2global_translation"]))
        np.testing.assert_allclose(world.translation[k], box.center, atol=1e-9)
        np.testing.assert_allclose(world.rotation[k], box.orientation.elements, atol=1e-12)
        np.testing.assert_allclose(world.velocity[k], box.velocity[:2], atol=1e-9)


def test_compose_with_yaw_is_the_hamilton_product() -> None:
    rotation = Quaternion(axis=[0.2, -0.5, 1.0], radians=1.1)
    yaws = np.array([-2.0, 0.0, 0.4, 3.0])

    composed = compose_with_yaw(rotation, yaws)

    for yaw, quaternion in zip(yaws, composed):
        expected = rotation * Quaternion(axis=[0, 0, 1], radians=yaw)
        np.testing.assert_allclose(quaternion, expected.elements, atol=1e-12)


def test_pose_maps_lidar_origin_to_sensor_position_in_global() -> None:
    info = make_info()
    rotation, translation = lidar_to_global_pose(info)
    ego_rotation = Quaternion(info["ego2global_rotation"])
    expected = ego_rotation.rotate(info["lidar2ego_translation"]) + np.array(info["ego2global_translation"])
    np.testing.assert_allclose(translation, expected)
    assert rotation.yaw_pitch_roll[0] == pytest.approx(np.pi / 6 - np.pi / 2)


def test_bad_shape_and_missing_pose_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\(K, 9\)"):
        lidar_boxes_to_global(np.zeros((2, 7)), make_info())
    info = make_info()
    del info["ego2global_rotation"]
    with pytest.raises(KeyError, match="ego2global_rotation"):
        lidar_boxes_to_global(np.zeros((0, 9)), info)
