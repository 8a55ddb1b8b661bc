"""Denoising queries: StreamPETR's box noising and RayDN's ray denoising."""
