from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from containai.orchestrator import Orchestrator, open_orchestrator
from containai.orchestrator._journal import Journal
from containai.orchestrator.testing import FakeDocker, FakeSSH


@pytest.fixture(autouse=True)
def _isolated(isolated_home: Path) -> Path:
    """Every test here runs with an isolated HOME (tests/conftest.py)."""
    return isolated_home


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        path = tmp_path / "src" / name
        path.mkdir(parents=True)
        return path

    return make


OpenOrch = Callable[..., AbstractAsyncContextManager[Orchestrator]]


@pytest.fixture
def fake() -> FakeDocker:
    return FakeDocker()


@pytest.fixture
def orchestrator(fake: FakeDocker, tmp_path: Path) -> OpenOrch:
    @asynccontextmanager
    async def opened(
        docker: FakeDocker | None = None, **kwargs: object
    ) -> AsyncIterator[Orchestrator]:
        docker = docker or fake
        kwargs.setdefault("jitter", 0.0)
        kwargs.setdefault("journal", Journal(tmp_path / "journal.ndjson"))
        async with open_orchestrator(docker=docker, ssh=FakeSSH(docker), **kwargs) as orch:  # type: ignore[arg-type]
            yield orch

    return opened
