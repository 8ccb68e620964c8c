"""Adapters: the only code that imports aiodocker and asyncssh (both asyncio-only).

:func:`open_default_ports` opens the real Docker and SSH ports the orchestrator uses unless a
caller (a test, an embedding) passes its own.
"""

from __future__ import annotations

import inspect
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from containai.orchestrator._ports import DockerPort, SSHPort


@asynccontextmanager
async def open_default_ports(
    engine: str,
) -> AsyncIterator[tuple[DockerPort, SSHPort, Callable[[Path], Awaitable[str]]]]:
    from containai.orchestrator.adapters._docker import open_docker
    from containai.orchestrator.adapters._ssh import AsyncSSHPort, ensure_client_key

    async def client_key(path: Path) -> str:
        result = ensure_client_key(path)
        if inspect.isawaitable(result):
            result = await result
        return str(result).strip()

    async with open_docker(engine) as docker:
        ssh = AsyncSSHPort()
        try:
            yield docker, ssh, client_key
        finally:
            close = getattr(ssh, "aclose", None)
            if close is not None:
                await close()
