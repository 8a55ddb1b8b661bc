"""The plain detectors: Petr3D (StreamPETR) and RepDetr3D (RayDN)."""
