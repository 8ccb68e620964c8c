from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from containai.orchestrator.testing import FakeDocker, FakeSSH


@pytest.fixture(autouse=True)
def _isolated(isolated_home: Path) -> Path:
    """Every test here runs with an isolated HOME (tests/conftest.py)."""
    return isolated_home


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
