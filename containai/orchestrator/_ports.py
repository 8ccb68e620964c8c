"""Ports: the protocols the orchestrator core talks to, with the small view Structs they return.

Real implementations live in :mod:`containai.orchestrator.adapters`; in-memory fakes in
:mod:`containai.orchestrator.testing`. Everything crossing a port is a cai type: third-party
errors are mapped to :class:`~containai.fsm.CaiError` subclasses inside the adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager


# -- Docker -----------------------------------------------------------------------------------
class PortBinding(msgspec.Struct, frozen=True):
    host_ip: str
    host_port: int


class ContainerView(msgspec.Struct, frozen=True, kw_only=True):
    """What cai reads of one container (from list or inspect)."""

    id: str
    name: str
    labels: Mapping[str, str]
    status: str  # docker's: created, running, exited, dead, paused, restarting, removing
    image: str = ""
    exit_code: int = 0
    oom_killed: bool = False
    started_at: str = ""
    finished_at: str = ""
    ssh_port: int | None = None  # host port bound to 22/tcp, when running
    runtime: str = ""
    memory: int = 0  # bytes, 0 = unlimited
    nano_cpus: int = 0
    privileged: bool = False
    mounts: Sequence[str] = ()  # "source:destination" per mount


class DockerEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One container event from the engine's event stream."""

    action: str  # create, start, die, oom, destroy, stop, kill, ...
    container_id: str
    name: str
    labels: Mapping[str, str]
    time_nano: int
    exit_code: int | None = None


class CreateSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to create one workspace container."""

    name: str
    image: str
    hostname: str
    labels: Mapping[str, str]
    env: Mapping[str, str] = {}
    binds: Sequence[str] = ()  # "source:destination[:mode]", source a host path or volume
    ssh_port_range: tuple[int, int] = (2300, 2500)
    memory: int = 0
    nano_cpus: int = 0
    runtime: str = "runc"
    host_config_extra: Mapping[str, object] = {}  # tmpfs, cgroup mount, privileged (runtime policy)


class EngineInfo(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    default_runtime: str
    runtimes: Sequence[str]
    cgroup_version: int
    kernel: str
    memory: int
    cpus: int
    data_root: str


class DockerPort(Protocol):
    async def info(self) -> EngineInfo: ...

    async def list_managed(self) -> list[ContainerView]: ...

    async def inspect(self, ref: str) -> ContainerView: ...

    async def create(self, spec: CreateSpec) -> str: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, *, grace: float) -> None: ...

    async def kill(self, ref: str) -> None: ...

    async def remove(self, ref: str, *, volumes: bool = False) -> None: ...

    async def image_exists(self, ref: str) -> bool: ...

    async def remove_volume(self, name: str) -> None: ...

    def event_stream(
        self, *, since: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[DockerEvent]]:
        """Managed-container events from ``since`` (unix nanoseconds) on.

        Entering the context returns only once the engine has answered, so whatever happens
        after ``__aenter__`` returns is on the stream: subscribe first, then list or act."""
        ...

    def console(
        self, ref: str, *, since: float | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Lines of the container's console (its TTY log stream) from ``since`` (unix seconds;
        default: the start of the current boot), following until the container stops."""
        ...

    async def read_file(self, ref: str, path: str) -> bytes: ...

    async def exec(
        self, ref: str, argv: Sequence[str], *, user: str = "root"
    ) -> tuple[int, bytes]: ...


# -- SSH --------------------------------------------------------------------------------------
class SSHTarget(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach one workspace's sshd, with the host keys it must present."""

    host: str = "127.0.0.1"
    port: int
    user: str = "agent"
    key_path: str
    known_hosts: str  # path of the known_hosts file holding the pinned key(s)
    forward_agent: bool = False


OutputSink = Callable[[bytes], Awaitable[None]]


class SSHPort(Protocol):
    async def probe(self, target: SSHTarget) -> None:
        """One SSH handshake with key auth and host-key verification, then close.

        Raises:
            SSHUnavailable: refused, reset, or auth failed.
            HostKeyMismatch: the server's host key is not the pinned one.
        """
        ...

    async def banner(self, target: SSHTarget) -> None:
        """Connect and read the server's SSH identification line, no handshake: the cheap
        check a process uses for workspaces it only observes.

        Raises:
            SSHUnavailable: nothing answers, or what answers is not an SSH server.
        """
        ...

    async def run(
        self,
        target: SSHTarget,
        command: str,
        *,
        stdout: OutputSink,
        stderr: OutputSink,
        stdin: bytes | None = None,
    ) -> int:
        """Run ``command``, streaming its output to the sinks; return its exit status."""
        ...
