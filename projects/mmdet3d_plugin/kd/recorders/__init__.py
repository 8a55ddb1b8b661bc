"""Feature taps: forward hooks held by plain objects, never modules."""
from .feature_tap import FeatureTap
from .tap_manager import TapManager, resolve_module

__all__ = ["FeatureTap", "TapManager", "resolve_module"]
