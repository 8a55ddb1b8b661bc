"""Attention, positional encodings, MLN, memory queue, denoising and deformable aggregation."""
