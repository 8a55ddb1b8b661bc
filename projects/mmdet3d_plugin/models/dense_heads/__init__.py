"""3D query heads (StreamPETR, RayDN) and 2D auxiliary heads."""
