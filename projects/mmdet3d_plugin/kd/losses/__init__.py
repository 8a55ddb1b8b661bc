"""Distillation losses, one per file."""
