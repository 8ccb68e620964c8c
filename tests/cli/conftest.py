from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from containai.orchestrator.testing import FakeDocker, FakeSSH


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    for name in list(os.environ):
        if name.startswith("CONTAINAI_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """Route every command's orchestrator to one in-memory engine that outlives each run."""
    docker = FakeDocker()
    ssh = FakeSSH(docker)

    @asynccontextmanager
    async def ports(engine: str) -> AsyncIterator[tuple[object, object, object]]:
        async def key(path: Path) -> str:
            return "ssh-ed25519 AAAAfakeclientkey cai"

        yield docker, ssh, key

    import containai.orchestrator.adapters as adapters

    monkeypatch.setattr(adapters, "open_default_ports", ports)
    docker.ssh = ssh  # type: ignore[attr-defined]
    return docker
