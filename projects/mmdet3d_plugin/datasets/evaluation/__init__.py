"""Detector outputs to nuScenes submissions, and the official nuscenes-devkit evaluation."""
