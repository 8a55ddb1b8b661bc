"""The generated nuScenes-format world: tables, cameras, images and LiDAR sweeps."""
