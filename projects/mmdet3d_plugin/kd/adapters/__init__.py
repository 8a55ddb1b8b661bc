"""Trainable student-to-teacher projections."""
