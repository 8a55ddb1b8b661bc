"""Map masks readable by the devkit's MapMask."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nuscenes.utils.map_mask import MapMask

from projects.mmdet3d_plugin.datasets.synthetic.maps import write_maps


def test_map_covers_trajectories(tmp_path: Path) -> None:
    traj = np.stack([np.linspace(90.0, 150.0, 20), np.linspace(100.0, 120.0, 20)], axis=1)
    records = write_maps(tmp_path, 0, {"boston-seaport": [("log-a", traj)]})
    assert records[0]["log_tokens"] == ["log-a"] and records[0]["category"] == "semantic_prior"
    mask = MapMask(str(tmp_path / records[0]["filename"]))
    assert mask.is_on_mask(traj[:, 0], traj[:, 1]).all()
    assert not mask.is_on_mask(np.array([120.0]), np.array([160.0])).any()
