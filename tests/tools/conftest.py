"""Fixtures of the tool tests: importing a script of ``tools/``, the tiny world's training data."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
from projects.mmdet3d_plugin.paths import REPO_ROOT

TOOLS = REPO_ROOT / "tools"


@pytest.fixture
def load_tool() -> Callable[[str], ModuleType]:
    """``load_tool(name)``: ``tools/<name>.py`` imported as a fresh module (tools are scripts)."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def train_data_options(synthetic_world: Path, synthetic_infos: dict[str, Path]) -> list[str]:
    """``--cfg-options`` pointing ``data.train`` at the tiny generated world."""
    return ["--cfg-options", f"data.train.data_root={synthetic_world}",
            f"data.train.ann_file={synthetic_infos['train']}"]
