"""Shared fixtures.

``anyio_backend`` is declared explicitly with both backends so a missing trio install fails
loudly; adapter and CLI tests narrow it to asyncio with
``@pytest.mark.parametrize("anyio_backend", ["asyncio"])``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
