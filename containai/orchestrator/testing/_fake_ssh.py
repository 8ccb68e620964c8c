"""An in-memory SSH port: sshd "answers" once the fake container has printed its sshd marker."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from containai._defaults import MARKER_SSHD_READY
from containai.fsm._errors import HostKeyMismatch, SSHUnavailable
from containai.orchestrator.testing._fake_docker import FakeContainer

if TYPE_CHECKING:
    from containai.orchestrator._ports import OutputSink, SSHTarget
    from containai.orchestrator.testing._fake_docker import FakeDocker

Handler = Callable[[str, FakeContainer], tuple[int, bytes, bytes]]


def _echo(command: str, container: FakeContainer) -> tuple[int, bytes, bytes]:
    return 0, command.encode() + b"\n", b""


class FakeSSH:
    """Implements :class:`~containai.orchestrator._ports.SSHPort` against a :class:`FakeDocker`.

    Args:
        docker: the fake engine whose containers this "connects" to, by published port.
        handler: what ``run`` does with a command in a container: returns
            (exit status, stdout, stderr).
    """

    def __init__(self, docker: FakeDocker, *, handler: Handler = _echo) -> None:
        self.docker = docker
        self.handler = handler
        self.refuse: set[int] = set()  # ports whose "sshd" refuses connections
        self.wrong_host_key: set[int] = set()
        self.probes = 0
        self.banners = 0
        self.runs = 0

    def _check(self, target: SSHTarget) -> FakeContainer:
        for c in self.docker.containers.values():
            if c.ssh_port == target.port and c.status == "running":
                if target.port in self.wrong_host_key:
                    raise HostKeyMismatch(f"host key for [127.0.0.1]:{target.port} changed")
                if target.port in self.refuse:
                    break
                if any(MARKER_SSHD_READY in line for line in c.console[c.boot_start :]):
                    return c
                break
        raise SSHUnavailable(f"connection refused on 127.0.0.1:{target.port}")

    async def probe(self, target: SSHTarget) -> None:
        await anyio.lowlevel.checkpoint()
        self.probes += 1
        self._check(target)

    async def banner(self, target: SSHTarget) -> None:
        await anyio.lowlevel.checkpoint()
        self.banners += 1
        self._check(target)

    async def run(
        self,
        target: SSHTarget,
        command: str,
        *,
        stdout: OutputSink,
        stderr: OutputSink,
        stdin: bytes | None = None,
    ) -> int:
        await anyio.lowlevel.checkpoint()
        self.runs += 1
        container = self._check(target)
        status, out, err = self.handler(command, container)
        if out:
            await stdout(out)
        if err:
            await stderr(err)
        return status
