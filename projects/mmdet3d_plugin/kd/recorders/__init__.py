"""Feature taps: forward hooks and method wrappers held by plain objects, never modules."""
from .feature_tap import FeatureTap
from .method_tap import MethodTap
from .tap_manager import TapManager, resolve_module, resolve_target

__all__ = ["FeatureTap", "MethodTap", "TapManager", "resolve_module", "resolve_target"]
