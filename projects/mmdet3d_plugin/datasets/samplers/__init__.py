"""Samplers, among them the streaming sampler in which each batch slot walks one scene."""
