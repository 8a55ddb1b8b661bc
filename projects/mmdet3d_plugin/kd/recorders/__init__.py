"""Feature taps: forward hooks held by plain objects, never modules."""
