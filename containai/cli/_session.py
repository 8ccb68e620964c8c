"""Running things in a workspace over SSH: non-interactive through the SSH port (asyncssh),
interactive by handing the terminal to the system OpenSSH client with the generated config."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from containai._defaults import SSH_HOST_PREFIX
from containai.orchestrator._ssh_command import remote_command

if TYPE_CHECKING:
    from containai.model import Overrides
    from containai.orchestrator import Orchestrator


def split_workspace(args: list[str]) -> tuple[Path | None, list[str]]:
    """``[PATH] CMD...`` → (PATH, CMD). The first word is the workspace when it is an existing
    directory and a command follows it (``cai exec ~/src/app -- make test``)."""
    if len(args) >= 2 and Path(args[0]).is_dir():
        return Path(args[0]).resolve(), args[1:]
    return None, args


async def bring_up(
    orch: Orchestrator, path: Path | None, container: str | None, overrides: Overrides | None = None
) -> str:
    """The container name of the target workspace, bringing it up first when needed."""
    if container:
        status = await orch.wait(container)
        return status.name
    status = await orch.up(path or Path.cwd(), overrides=overrides)
    return status.name


async def run_captured(orch: Orchestrator, name: str, argv: list[str]) -> int:
    """Run ``argv`` over asyncssh, streaming stdout/stderr; return the remote exit status."""
    import anyio

    stdout = anyio.wrap_file(sys.stdout.buffer)
    stderr = anyio.wrap_file(sys.stderr.buffer)

    async def out(data: bytes) -> None:
        await stdout.write(data)
        await stdout.flush()

    async def err(data: bytes) -> None:
        await stderr.write(data)
        await stderr.flush()

    async with orch.session(name) as target:
        return await orch.ssh.run(target, remote_command(argv), stdout=out, stderr=err)


async def run_terminal(orch: Orchestrator, name: str, argv: list[str] | None) -> int:
    """Hand the terminal to the system ``ssh`` with the workspace's alias and config."""
    import anyio

    from containai._defaults import ssh_dir

    config = ssh_dir() / "containai.d" / f"{name}.conf"
    command = ["ssh", "-F", str(config)]
    if sys.stdin.isatty():
        command.append("-t")
    command += [f"{SSH_HOST_PREFIX}{name}", remote_command(argv or [])]
    async with orch.session(name):
        process = await anyio.open_process(command, stdin=None, stdout=None, stderr=None)
        try:
            return await process.wait()
        finally:
            if process.returncode is None:
                process.terminate()


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
