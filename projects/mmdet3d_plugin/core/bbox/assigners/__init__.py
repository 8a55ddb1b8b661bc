"""Assigners: one-to-one matching of predictions to ground truth."""
