"""Import layering of the library: no tool helpers in it, visualization only on core."""
from __future__ import annotations

import ast
from pathlib import Path

from projects.mmdet3d_plugin.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "projects" / "mmdet3d_plugin"


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of every module ``path`` imports (relative imports resolved)."""
    package = path.relative_to(REPO_ROOT).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            names.add(".".join((*base, node.module or "")).rstrip("."))
    return names


def test_the_library_never_imports_the_tool_helpers():
    offenders = {str(path.relative_to(REPO_ROOT)) for path in PACKAGE.rglob("*.py")
                 if any(name.split(".")[0] == "harmodistill_tools" for name in imported_modules(path))}
    assert not offenders


def test_visualization_imports_only_core_of_the_library():
    allowed = ("projects.mmdet3d_plugin.core", "projects.mmdet3d_plugin.visualization")
    offenders = {(str(path.relative_to(REPO_ROOT)), name)
                 for path in (PACKAGE / "visualization").rglob("*.py") for name in imported_modules(path)
                 if name.startswith("projects.mmdet3d_plugin") and not name.startswith(allowed)}
    assert not offenders
