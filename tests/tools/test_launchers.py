"""The shell launchers print their usage (exit 2) when arguments are missing."""
from __future__ import annotations

import subprocess

import pytest
from projects.mmdet3d_plugin.paths import REPO_ROOT

REPO = REPO_ROOT
# gpu_check.sh takes no arguments (tests/tools/test_gpu_check.py covers it).
LAUNCHERS = sorted(p for p in (REPO / "tools").glob("*.sh") if p.name != "gpu_check.sh")


@pytest.mark.parametrize("launcher", LAUNCHERS, ids=lambda p: p.name)
@pytest.mark.parametrize("given", [[], ["only_one_argument.py"]], ids=["no-args", "one-arg"])
def test_missing_arguments_print_usage_and_exit_2(launcher, given):
    result = subprocess.run(["bash", str(launcher), *given], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"usage: {launcher}" in result.stderr and "unbound variable" not in result.stderr


@pytest.mark.parametrize("launcher, given, expected", [
    ("dist_train.sh", ["cfg.py", "2", "--seed", "1"], ["2", "tools/train.py", "cfg.py", "--seed", "1"]),
    ("dist_distill.sh", ["cfg.py", "3"], ["3", "tools/distillation.py", "cfg.py"]),
    ("dist_test.sh", ["cfg.py", "ck.pth", "4", "--eval", "bbox"],
     ["4", "tools/test.py", "cfg.py", "ck.pth", "--eval", "bbox"]),
    ("dist_launch.sh", ["1", "tools/x.py", "a b"], ["1", "tools/x.py", "a b"]),
])
def test_launchers_hand_their_arguments_to_torchrun(tmp_path, launcher, given, expected):
    """Each wrapper runs ``torchrun ... --nproc_per_node=NPROC SCRIPT ARGS`` from the repository root."""
    fake = tmp_path / "torchrun"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$PWD" "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "PORT": "29999"}
    result = subprocess.run(["bash", str(REPO / "tools" / launcher), *given], capture_output=True, text=True,
                            timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    cwd, *argv = result.stdout.splitlines()
    assert cwd == str(REPO)
    nproc, *rest = expected
    assert argv == ["--nnodes=1", "--node_rank=0", "--master_addr=127.0.0.1", "--master_port=29999",
                    f"--nproc_per_node={nproc}", *rest]
