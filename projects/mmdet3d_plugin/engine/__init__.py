"""The Lightning module and data module built from a config."""
