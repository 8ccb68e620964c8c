"""Fixtures for tests against the real dedicated engine, real systemd and real sshd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from containai._defaults import ENGINE_SOCKET, LABEL_WORKSPACE, image_ref

TEST_VOLUME = "cai-test-data"


def _engine_problem() -> str | None:
    if not os.path.exists(ENGINE_SOCKET):
        return f"the cai engine socket {ENGINE_SOCKET} is missing (run `cai setup`)"
    probe = subprocess.run(
        ["docker", "-H", f"unix://{ENGINE_SOCKET}", "image", "inspect", image_ref("base")],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"image {image_ref('base')} is missing (run `cai image build`)"
    return None


@pytest.fixture(scope="session")
def engine() -> str:
    problem = _engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real engine: {problem}")
        pytest.skip(problem)
    return f"unix://{ENGINE_SOCKET}"


@pytest.fixture
def cai_env(tmp_path: Path, engine: str) -> Iterator[dict[str, str]]:
    """Environment for `cai` subprocesses: an isolated HOME (SSH files, known_hosts, journal)
    and a test data volume; every container made for this test's workspaces is removed after."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINAI_")} | {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "CONTAINAI_DATA_VOLUME": TEST_VOLUME,
    }
    yield env
    listing = subprocess.run(
        [
            "docker",
            "-H",
            engine,
            "ps",
            "-a",
            "--format",
            "{{json .}}",
            "--filter",
            "label=containai.managed=true",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in listing.stdout.splitlines():
        row = json.loads(line)
        labels = dict(
            item.split("=", 1) for item in row.get("Labels", "").split(",") if "=" in item
        )
        if labels.get(LABEL_WORKSPACE, "").startswith(str(tmp_path)):
            subprocess.run(
                ["docker", "-H", engine, "rm", "-f", row["ID"]], capture_output=True, check=False
            )


def run_cai(
    env: dict[str, str],
    *args: str,
    timeout: float = 180,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `cai` command line in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "containai", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"cai {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@pytest.fixture
def workspaces(tmp_path: Path):
    def make(*names: str) -> list[Path]:
        paths = []
        for name in names:
            path = tmp_path / "src" / name
            path.mkdir(parents=True)
            (path / "README").write_text(f"workspace {name}\n")
            paths.append(path)
        return paths

    return make


@pytest.fixture
def cai(cai_env: dict[str, str]):
    """``cai("up", path)`` runs the real command line with the test's isolated environment."""

    def run(
        *args: str, timeout: float = 180, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_cai(cai_env, *args, timeout=timeout, check=check)

    return run
