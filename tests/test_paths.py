"""The repository-root constant every library module resolves shipped files against."""
from __future__ import annotations

from projects.mmdet3d_plugin.paths import REPO_ROOT


def test_repo_root_is_the_directory_holding_pyproject():
    assert (REPO_ROOT / "pyproject.toml").is_file()
    assert (REPO_ROOT / "projects" / "mmdet3d_plugin" / "paths.py").is_file()
    assert REPO_ROOT.is_absolute()
