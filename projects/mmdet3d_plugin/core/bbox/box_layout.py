"""Named indices of the 3D box layouts, and the nuScenes detection classes.

Two layouts are used everywhere in the project.

**Box** ``(..., 9)`` in the LIDAR_TOP frame of the sample (the layout of StreamPETR info
files, ``gt_boxes`` + ``gt_velocity``)::

    x, y, z, l, w, h, yaw, vx, vy

* ``x, y, z``: the box's geometric centre (nuScenes ``Box.center``), metres.
* ``l``: size along the heading axis, ``w``: size across it, ``h``: height
  (nuScenes ``wlh`` reordered to ``l, w, h``).
* ``yaw``: heading angle about +z, 0 along +x (nuScenes ``Box.orientation`` yaw in the
  LiDAR frame).
* ``vx, vy``: velocity in the LiDAR frame, m/s.

**Box code** ``(..., 10)`` regressed by the query heads::

    cx, cy, cz, log l, log w, log h, sin yaw, cos yaw, vx, vy
"""
from __future__ import annotations

# Box layout (..., 9).
X, Y, Z = 0, 1, 2
L, W, H = 3, 4, 5
YAW = 6
VX, VY = 7, 8
BOX_DIM = 9

# Box code layout (..., 10). Centre and size occupy the same slots as in the box.
CODE_X, CODE_Y, CODE_Z = 0, 1, 2
CODE_LOG_L, CODE_LOG_W, CODE_LOG_H = 3, 4, 5
CODE_SIN_YAW, CODE_COS_YAW = 6, 7
CODE_VX, CODE_VY = 8, 9
CODE_DIM = 10

# The ten nuScenes detection classes, in the order of StreamPETR configs.
NUSCENES_CLASSES: tuple[str, ...] = (
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
)

# The six cameras, in the order of StreamPETR info files and models.
CAMERA_NAMES: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
