"""The tiny students of tests/fixtures (embed 32, ResNet-18 + FPN, 64x176 images), built, and a
short synthetic stream."""
from __future__ import annotations

import pytest
import torch

from tests.fixtures.batches import stream_frame
from tests.fixtures.tiny_models import build_tiny, export_raydn, export_streampetr


@pytest.fixture(scope="module")
def tiny_raydn() -> torch.nn.Module:
    return build_tiny(export_raydn())


@pytest.fixture(scope="module")
def tiny_streampetr() -> torch.nn.Module:
    return build_tiny(export_streampetr())


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    """Three frames of one scene, batch 1."""
    return [stream_frame(i) for i in range(3)]


@pytest.fixture(scope="module")
def stream_b2() -> list[dict]:
    """Three frames of one scene, batch 2 (for the dynamic batch dimension)."""
    return [stream_frame(i, batch=2) for i in range(3)]
