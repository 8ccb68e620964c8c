"""Shared fixtures.

``anyio_backend`` is declared explicitly with both backends so a missing trio install fails
loudly; adapter and CLI tests narrow it to asyncio with
``@pytest.mark.parametrize("anyio_backend", ["asyncio"])``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and the XDG config/state dirs inside tmp_path, no CONTAINAI_* variable: tests never
    touch the real ~/.ssh, ~/.config/containai or the journal. Packages make it autouse."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    for name in list(os.environ):
        if name.startswith("CONTAINAI_"):
            monkeypatch.delenv(name)
    return home
