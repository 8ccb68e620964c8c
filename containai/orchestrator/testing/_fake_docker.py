"""An in-memory Docker engine for tests of the core: containers, a scriptable event stream and
console, and knobs to make things go wrong (died while booting, OOM, dropped event stream)."""

from __future__ import annotations

import itertools
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import msgspec

from containai._defaults import LABEL_MANAGED, MARKER_INIT_DONE, MARKER_SSHD_READY
from containai.fsm._errors import ContainerGone, DockerError, DockerUnavailable, PortRangeExhausted
from containai.orchestrator._ports import ContainerView, CreateSpec, DockerEvent, EngineInfo

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from anyio.streams.memory import MemoryObjectSendStream

#: What a booting container prints on its console by default: both readiness markers.
DEFAULT_BOOT: tuple[str, ...] = ("systemd booting", MARKER_INIT_DONE, MARKER_SSHD_READY)


class FakeContainer(msgspec.Struct, kw_only=True):
    id: str
    name: str
    spec: CreateSpec
    status: str = "created"
    exit_code: int = 0
    oom_killed: bool = False
    ssh_port: int | None = None
    console: list[str] = msgspec.field(default_factory=list)
    boot_start: int = 0  # index in console where the current boot begins
    files: dict[str, bytes] = msgspec.field(default_factory=dict)
    changed: anyio.Event = msgspec.field(default_factory=anyio.Event)

    def touch(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def view(self) -> ContainerView:
        return ContainerView(
            id=self.id,
            name=self.name,
            labels=dict(self.spec.labels),
            status=self.status,
            image=self.spec.image,
            exit_code=self.exit_code,
            oom_killed=self.oom_killed,
            ssh_port=self.ssh_port if self.status == "running" else None,
            runtime=self.spec.runtime,
            memory=self.spec.memory,
            nano_cpus=self.spec.nano_cpus,
            mounts=tuple(b.rsplit(":", 1)[0] if b.count(":") > 1 else b for b in self.spec.binds),
        )


class FakeDocker:
    """Implements :class:`~containai.orchestrator._ports.DockerPort` in memory.

    Args:
        boot: console lines a container prints when started (default: both markers).
        on_start: called with the container after it starts, to script extra behaviour.
    """

    def __init__(
        self,
        *,
        boot: Sequence[str] = DEFAULT_BOOT,
        on_start: Callable[[FakeContainer], None] | None = None,
        port_range: tuple[int, int] | None = None,
    ) -> None:
        self.boot = tuple(boot)
        self.on_start = on_start
        self.port_range = port_range
        self.containers: dict[str, FakeContainer] = {}
        self.volumes: set[str] = set()
        self.images: set[str] = set()
        self.log: list[DockerEvent] = []
        self.down = False  # engine unreachable
        self._streams: list[MemoryObjectSendStream[DockerEvent]] = []
        self._ids = itertools.count(1)
        self._last_nano = 0
        self.calls: list[tuple[str, str]] = []

    # -- scripting ----------------------------------------------------------------------------
    def find(self, ref: str) -> FakeContainer:
        for c in self.containers.values():
            if ref in (c.id, c.name):
                return c
        raise ContainerGone(f"No such container: {ref}", container=ref)

    def emit(self, action: str, c: FakeContainer, exit_code: int | None = None) -> None:
        nano = max(time.time_ns(), self._last_nano + 1)
        self._last_nano = nano
        event = DockerEvent(
            action=action,
            container_id=c.id,
            name=c.name,
            labels=dict(c.spec.labels),
            time_nano=nano,
            exit_code=exit_code,
        )
        self.log.append(event)
        if c.spec.labels.get(LABEL_MANAGED) != "true":
            return
        for stream in list(self._streams):
            try:
                stream.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._streams.remove(stream)

    def print(self, ref: str, line: str) -> None:
        c = self.find(ref)
        c.console.append(line)
        c.touch()

    def die(self, ref: str, exit_code: int = 137, *, oom: bool = False) -> None:
        """The container dies from outside (``docker kill``, a crash, the OOM killer)."""
        c = self.find(ref)
        if oom:
            c.oom_killed = True
            self.emit("oom", c)
        c.status = "exited"
        c.exit_code = exit_code
        self.emit("die", c, exit_code)
        c.touch()

    def drop_event_streams(self) -> None:
        """Break every connected event stream, as a restarting engine would."""
        for stream in self._streams:
            stream.close()
        self._streams.clear()

    # -- DockerPort ---------------------------------------------------------------------------
    def _check(self) -> None:
        if self.down:
            raise DockerUnavailable("the fake engine is down")

    async def info(self) -> EngineInfo:
        self._check()
        return EngineInfo(
            version="fake",
            default_runtime="runc",
            runtimes=["runc"],
            cgroup_version=2,
            kernel="fake",
            memory=8 << 30,
            cpus=2,
            data_root="/fake",
        )

    async def image_exists(self, ref: str) -> bool:
        self._check()
        return not self.images or ref in self.images

    async def list_managed(self) -> list[ContainerView]:
        self._check()
        return [
            c.view() for c in self.containers.values() if c.spec.labels.get(LABEL_MANAGED) == "true"
        ]

    async def inspect(self, ref: str) -> ContainerView:
        self._check()
        return self.find(ref).view()

    async def create(self, spec: CreateSpec) -> str:
        self._check()
        await anyio.lowlevel.checkpoint()
        if any(c.name == spec.name for c in self.containers.values()):
            raise DockerError(
                f"Conflict. The container name /{spec.name} is already in use", status=409
            )
        cid = f"{next(self._ids):064x}"
        c = FakeContainer(id=cid, name=spec.name, spec=spec)
        self.containers[cid] = c
        self.calls.append(("create", spec.name))
        for bind in spec.binds:
            source = bind.split(":", 1)[0]
            if not source.startswith("/"):
                self.volumes.add(source)
        self.emit("create", c)
        return cid

    def _allocate_port(self, c: FakeContainer) -> int:
        lo, hi = self.port_range or c.spec.ssh_port_range
        used = {x.ssh_port for x in self.containers.values() if x.status == "running"}
        for port in range(lo, hi + 1):
            if port not in used:
                return port
        raise PortRangeExhausted(f"all ports are allocated in {lo}-{hi}")

    async def start(self, ref: str) -> None:
        self._check()
        await anyio.lowlevel.checkpoint()
        c = self.find(ref)
        self.calls.append(("start", c.name))
        if c.status == "running":
            return
        c.ssh_port = self._allocate_port(c)
        c.status = "running"
        c.exit_code = 0
        c.oom_killed = False
        c.boot_start = len(c.console)
        self.emit("start", c)
        c.console.extend(
            # like the real unit, the sshd marker carries the host key
            f"{line} {' '.join(fake_host_key(c.id).decode().split()[:2])}"
            if line == MARKER_SSHD_READY
            else line
            for line in self.boot
        )
        c.touch()
        if self.on_start is not None:
            self.on_start(c)

    async def stop(self, ref: str, *, grace: float) -> None:
        self._check()
        await anyio.lowlevel.checkpoint()
        c = self.find(ref)
        self.calls.append(("stop", c.name))
        if c.status != "running":
            return
        self.emit("stop", c)
        self.die(ref, exit_code=0)

    async def kill(self, ref: str) -> None:
        self._check()
        self.die(ref, 137)

    async def remove(self, ref: str, *, volumes: bool = False) -> None:
        self._check()
        await anyio.lowlevel.checkpoint()
        c = self.find(ref)
        self.calls.append(("remove", c.name))
        if c.status == "running":
            self.die(ref, 137)
        del self.containers[c.id]
        self.emit("destroy", c)
        c.touch()

    async def remove_volume(self, name: str) -> None:
        self._check()
        self.volumes.discard(name)

    @asynccontextmanager
    async def event_stream(self, *, since: int | None) -> AsyncIterator[AsyncIterator[DockerEvent]]:
        self._check()
        for c in self.containers.values():  # one fake may outlive an event loop (CLI tests)
            c.changed = anyio.Event()
        send, receive = anyio.create_memory_object_stream[DockerEvent](1000)
        if since is not None:
            for event in self.log:
                if event.time_nano >= since and event.labels.get(LABEL_MANAGED) == "true":
                    send.send_nowait(event)
        self._streams.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in self._streams:
                self._streams.remove(send)
            send.close()

    @asynccontextmanager
    async def console(
        self, ref: str, *, since: float | None = None
    ) -> AsyncIterator[AsyncIterator[str]]:
        self._check()
        c = self.find(ref)
        start = c.boot_start

        async def lines() -> AsyncIterator[str]:
            index = start
            while True:
                while index < len(c.console):
                    yield c.console[index]
                    index += 1
                if c.status != "running" or c.id not in self.containers:
                    return
                await c.changed.wait()

        yield lines()

    async def read_file(self, ref: str, path: str) -> bytes:
        self._check()
        c = self.find(ref)
        if path not in c.files:
            if path.startswith("/etc/ssh/ssh_host_") and c.status == "running":
                return fake_host_key(c.id)
            raise ContainerGone(f"{path} not found in {c.name}", container=c.name)
        return c.files[path]

    async def exec(self, ref: str, argv: Sequence[str], *, user: str = "root") -> tuple[int, bytes]:
        self._check()
        self.find(ref)
        return 0, b""


def fake_host_key(seed: str) -> bytes:
    """A well-formed ed25519 public key line, different for every seed."""
    import base64
    import hashlib
    import struct

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    blob = field(b"ssh-ed25519") + field(hashlib.sha256(seed.encode()).digest())
    return b"ssh-ed25519 " + base64.b64encode(blob) + b" root@fake\n"


def managed(labels: Mapping[str, str]) -> bool:
    return labels.get(LABEL_MANAGED) == "true"
