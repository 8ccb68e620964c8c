from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(isolated_home: Path) -> Path:
    """Every test here runs with an isolated HOME (tests/conftest.py)."""
    return isolated_home


def run_git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    proc = subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(cwd, *args)``: run git with a fixed identity and ``main`` as the initial branch."""
    return run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit on ``main``."""
    path = tmp_path / "src" / "MyRepo"
    path.mkdir(parents=True)
    run_git(path, "init", "-q")
    run_git(path, "commit", "-q", "--allow-empty", "-m", "init")
    return path
