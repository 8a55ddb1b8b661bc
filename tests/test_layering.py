"""Import layering of the library (``../shared/ARCHITECTURE.md``) and its one import style.

Each top-level part of ``projects.mmdet3d_plugin`` may import only the parts listed in
:data:`ALLOWED` (itself always); the distillation code reaches models only through the
detector interface; no library file imports the tool helpers or imports its own package
by absolute name.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from projects.mmdet3d_plugin.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "projects" / "mmdet3d_plugin"
PREFIX = "projects.mmdet3d_plugin"
LEAVES = ("registry", "paths")

#: What each part may import besides itself and the leaves (registry, paths).
ALLOWED = {
    "core": (),
    "zoo": (),
    "datasets": ("core",),
    "models": ("core",),
    "visualization": ("core", "kd.recorders"),
    "kd": ("core", "models.detectors.base"),
    "export": ("core", "models"),
    "engine": ("core", "datasets", "models", "kd", "zoo"),
}


def imported_modules(path: Path, root: Path = REPO_ROOT) -> set[str]:
    """Absolute dotted names of every module ``path`` (below ``root``) imports, relative
    imports resolved against its package."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            names.add(".".join((*base, node.module or "")).rstrip("."))
    return names


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def test_every_part_of_the_package_is_in_the_layering_map():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_a_part_imports_only_what_the_layering_allows(part):
    allowed = tuple(f"{PREFIX}.{name}" for name in (part, *LEAVES, *ALLOWED[part]))
    offenders = {(str(path.relative_to(REPO_ROOT)), name)
                 for path in (PACKAGE / part).rglob("*.py") for name in imported_modules(path)
                 if name.startswith(f"{PREFIX}.")
                 and not any(name == a or name.startswith(f"{a}.") for a in allowed)}
    assert not offenders


def test_the_library_never_imports_the_tool_helpers():
    offenders = {str(path.relative_to(REPO_ROOT)) for path in PACKAGE.rglob("*.py")
                 if any(name.split(".")[0] == "harmodistill_tools" for name in imported_modules(path))}
    assert not offenders


def test_the_package_imports_itself_only_relatively():
    absolute = re.compile(rf"^\s*(from|import) {re.escape(PREFIX)}\b", re.M)
    offenders = {str(path.relative_to(REPO_ROOT)) for path in PACKAGE.rglob("*.py")
                 if absolute.search(path.read_text())}
    assert not offenders


def test_relative_imports_resolve_to_the_part_they_reach(tmp_path):
    head = tmp_path / "projects" / "mmdet3d_plugin" / "models" / "dense_heads" / "head.py"
    head.parent.mkdir(parents=True)
    head.write_text("from ...kd.recorders import tap_manager\nfrom . import branches\n"
                    "from ..utils.misc import topk_gather\n")
    assert imported_modules(head, tmp_path) == {f"{PREFIX}.kd.recorders", f"{PREFIX}.models.dense_heads",
                                                f"{PREFIX}.models.utils.misc"}
