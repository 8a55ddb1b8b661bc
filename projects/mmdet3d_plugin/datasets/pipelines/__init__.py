"""Data pipeline transforms, registered by the names StreamPETR configs use."""
from .bev_aug import GlobalRotScaleTransImage
from .compose import Compose
from .formatting import Collect3D, PETRFormatBundle3D
from .image_aug import ResizeCropFlipRotImage
from .lidar_depth import LoadLidarDepthMaps
from .loading import LoadAnnotations3D, LoadMultiViewImageFromFiles
from .multi_scale_flip_aug import MultiScaleFlipAug3D
from .normalize import NormalizeMultiviewImage
from .object_filters import ObjectNameFilter, ObjectRangeFilter
from .pad import PadMultiViewImage

__all__ = [
    "Collect3D",
    "Compose",
    "GlobalRotScaleTransImage",
    "LoadAnnotations3D",
    "LoadLidarDepthMaps",
    "LoadMultiViewImageFromFiles",
    "MultiScaleFlipAug3D",
    "NormalizeMultiviewImage",
    "ObjectNameFilter",
    "ObjectRangeFilter",
    "PETRFormatBundle3D",
    "PadMultiViewImage",
    "ResizeCropFlipRotImage",
]
