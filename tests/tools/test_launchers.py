"""The shell launchers print their usage (exit 2) when arguments are missing."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCHERS = sorted((REPO / "tools").glob("*.sh"))


@pytest.mark.parametrize("launcher", LAUNCHERS, ids=lambda p: p.name)
@pytest.mark.parametrize("given", [[], ["only_one_argument.py"]], ids=["no-args", "one-arg"])
def test_missing_arguments_print_usage_and_exit_2(launcher, given):
    result = subprocess.run(["bash", str(launcher), *given], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"usage: {launcher}" in result.stderr and "unbound variable" not in result.stderr
