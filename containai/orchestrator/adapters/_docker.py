"""The Docker port over aiodocker, talking to the dedicated engine's socket.

Everything aiodocker/aiohttp raises is mapped into cai's error tree here. Engine payloads are
decoded into small view Structs holding only the fields cai reads (STYLE rule 7).
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiodocker
import aiohttp
import anyio
import msgspec

from containai._defaults import ENGINE_HOST, MANAGED_FILTER
from containai.fsm._errors import (
    CaiError,
    ContainerGone,
    DockerError,
    DockerUnavailable,
    PortRangeExhausted,
)
from containai.orchestrator._ports import (
    ContainerView,
    CreateSpec,
    DockerEvent,
    EngineInfo,
)
from containai.orchestrator._status import docker_time
from containai.orchestrator.adapters._errors import map_exceptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")


# -- views of engine payloads -----------------------------------------------------------------
class _State(msgspec.Struct, rename="pascal"):
    status: str = ""
    exit_code: int = 0
    o_o_m_killed: bool = msgspec.field(default=False, name="OOMKilled")
    started_at: str = ""
    finished_at: str = ""


class _Config(msgspec.Struct, rename="pascal"):
    image: str = ""
    labels: dict[str, str] | None = None


class _HostConfig(msgspec.Struct, rename="pascal"):
    runtime: str = ""
    memory: int = 0
    nano_cpus: int = 0
    privileged: bool = False


class _Binding(msgspec.Struct, rename="pascal"):
    host_ip: str = ""
    host_port: str = ""


class _Network(msgspec.Struct, rename="pascal"):
    ports: dict[str, list[_Binding] | None] | None = None


class _Mount(msgspec.Struct, rename="pascal"):
    source: str = ""
    destination: str = ""
    name: str = ""


class _Inspect(msgspec.Struct, rename="pascal"):
    id: str
    name: str
    state: _State
    config: _Config
    host_config: _HostConfig
    network_settings: _Network
    mounts: list[_Mount] | None = None


class _Actor(msgspec.Struct, rename="pascal"):
    i_d: str = msgspec.field(default="", name="ID")
    attributes: dict[str, str] | None = None


class _Event(msgspec.Struct):
    Type: str = ""
    Action: str = ""
    Actor: _Actor = msgspec.field(default_factory=_Actor)
    timeNano: int = 0


class _Info(msgspec.Struct, rename="pascal"):
    server_version: str = ""
    default_runtime: str = ""
    runtimes: dict[str, Any] | None = None
    cgroup_version: str = "1"
    kernel_version: str = ""
    mem_total: int = 0
    n_c_p_u: int = msgspec.field(default=0, name="NCPU")
    docker_root_dir: str = ""


_event_decoder = msgspec.json.Decoder(_Event)


def _view(raw: Mapping[str, Any]) -> ContainerView:
    data = msgspec.convert(raw, _Inspect)
    port = None
    bindings = (data.network_settings.ports or {}).get("22/tcp") or []
    for binding in bindings:
        if binding.host_port:
            port = int(binding.host_port)
            break
    mounts = tuple(f"{m.name or m.source}:{m.destination}" for m in (data.mounts or []))
    return ContainerView(
        id=data.id,
        name=data.name.lstrip("/"),
        labels=data.config.labels or {},
        status=data.state.status,
        image=data.config.image,
        exit_code=data.state.exit_code,
        oom_killed=data.state.o_o_m_killed,
        started_at=data.state.started_at,
        finished_at=data.state.finished_at,
        ssh_port=port,
        runtime=data.host_config.runtime,
        memory=data.host_config.memory,
        nano_cpus=data.host_config.nano_cpus,
        privileged=data.host_config.privileged,
        mounts=mounts,
    )


def _event(raw: bytes) -> DockerEvent | None:
    try:
        data = _event_decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    if data.Type != "container":
        return None
    attrs = data.Actor.attributes or {}
    exit_code = attrs.get("exitCode")
    return DockerEvent(
        action=data.Action.split(":", 1)[0],
        container_id=data.Actor.i_d,
        name=attrs.get("name", ""),
        labels={k: v for k, v in attrs.items() if k.startswith("containai.")},
        time_nano=data.timeNano,
        exit_code=int(exit_code) if exit_code is not None and exit_code.isdigit() else None,
    )


# -- error mapping ----------------------------------------------------------------------------
def _unavailable(host: str) -> Any:
    def factory(exc: BaseException) -> CaiError:
        return DockerUnavailable(
            f"the cai engine at {host} does not answer ({exc}); start it with `sudo cai setup`"
        )

    return factory


def _docker_error(exc: BaseException, host: str) -> CaiError:
    assert isinstance(exc, aiodocker.DockerError)
    message = str(exc.message)
    if exc.status >= 900 or message.startswith("Cannot connect"):  # aiodocker's "no socket"
        return DockerUnavailable(
            f"the cai engine at {host} does not answer; start it with `sudo cai setup`"
        )
    if exc.status == 404:
        return ContainerGone(message)
    if "all ports are allocated" in message or "port is already allocated" in message:
        return PortRangeExhausted(message)
    return DockerError(message, status=exc.status)


class AioDockerPort:
    """:class:`~containai.orchestrator._ports.DockerPort` over one aiodocker client."""

    def __init__(self, docker: aiodocker.Docker, host: str) -> None:
        self._docker = docker
        self.host = host
        self._errors = {
            aiodocker.DockerError: lambda exc: _docker_error(exc, host),
            aiohttp.ClientConnectionError: _unavailable(host),
            FileNotFoundError: _unavailable(host),
            ConnectionError: _unavailable(host),
        }

    async def info(self) -> EngineInfo:
        with map_exceptions(self._errors):
            raw = await self._docker.system.info()
        data = msgspec.convert(raw, _Info)
        return EngineInfo(
            version=data.server_version,
            default_runtime=data.default_runtime,
            runtimes=sorted(data.runtimes or {}),
            cgroup_version=int(data.cgroup_version or 1),
            kernel=data.kernel_version,
            memory=data.mem_total,
            cpus=data.n_c_p_u,
            data_root=data.docker_root_dir,
        )

    async def image_exists(self, ref: str) -> bool:
        try:
            with map_exceptions(self._errors):
                await self._docker.images.inspect(ref)
        except ContainerGone:  # 404
            return False
        return True

    async def list_managed(self) -> list[ContainerView]:
        with map_exceptions(self._errors):
            found = await self._docker.containers.list(
                all=True, filters=json.dumps({"label": [MANAGED_FILTER]})
            )
        views: list[ContainerView] = []
        for container in found:
            try:
                views.append(await self.inspect(container.id))
            except ContainerGone:
                continue  # removed between list and inspect
        return views

    async def inspect(self, ref: str) -> ContainerView:
        with map_exceptions(self._errors):
            raw = await self._docker.containers.container(ref).show()
        return _view(raw)

    async def create(self, spec: CreateSpec) -> str:
        extra = dict(spec.host_config_extra)
        binds = [*spec.binds, *extra.pop("Binds", [])]  # type: ignore[misc]
        lo, hi = spec.ssh_port_range
        host_config: dict[str, Any] = {
            "Binds": binds,
            "PortBindings": {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": f"{lo}-{hi}"}]},
            "Runtime": spec.runtime,
            **extra,
        }
        if spec.memory:
            host_config["Memory"] = spec.memory
            host_config["MemorySwap"] = spec.memory
        if spec.nano_cpus:
            host_config["NanoCpus"] = spec.nano_cpus
        config: dict[str, Any] = {
            "Image": spec.image,
            "Hostname": spec.hostname,
            "Labels": dict(spec.labels),
            "Env": [f"{k}={v}" for k, v in spec.env.items()],
            "Tty": True,
            "ExposedPorts": {"22/tcp": {}},
            "StopSignal": "SIGRTMIN+3",
            "HostConfig": host_config,
        }
        with map_exceptions(self._errors):
            container = await self._docker.containers.create(config, name=spec.name)
        return str(container.id)

    async def start(self, ref: str) -> None:
        with map_exceptions(self._errors):
            await self._docker.containers.container(ref).start()

    async def stop(self, ref: str, *, grace: float) -> None:
        with map_exceptions(self._errors):
            await self._docker.containers.container(ref).stop(
                t=max(0, int(grace)), timeout=grace + 30
            )

    async def kill(self, ref: str) -> None:
        with map_exceptions(self._errors):
            await self._docker.containers.container(ref).kill()

    async def remove(self, ref: str, *, volumes: bool = False) -> None:
        with map_exceptions(self._errors):
            await self._docker.containers.container(ref).delete(force=True, v=volumes)

    async def remove_volume(self, name: str) -> None:
        with map_exceptions(self._errors):
            volume = await self._docker.volumes.get(name)  # type: ignore[no-untyped-call]
            await volume.delete()

    @asynccontextmanager
    async def event_stream(self, *, since: int | None) -> AsyncIterator[AsyncIterator[DockerEvent]]:
        params: dict[str, str] = {
            "filters": json.dumps({"type": ["container"], "label": [MANAGED_FILTER]}),
        }
        if since is not None:
            params["since"] = f"{since // 1_000_000_000}.{since % 1_000_000_000:09d}"
        with map_exceptions(self._errors):
            async with self._docker._query(
                "events",
                method="GET",
                params=params,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None, connect=5),
            ) as response:

                async def lines() -> AsyncIterator[DockerEvent]:
                    with map_exceptions(self._errors):
                        async for raw in response.content:
                            event = _event(raw)
                            if event is not None:
                                yield event

                yield lines()

    @asynccontextmanager
    async def console(
        self, ref: str, *, since: float | None = None
    ) -> AsyncIterator[AsyncIterator[str]]:
        # Only this boot's lines: a restarted container's log still holds the markers of its
        # previous boots, which must not be taken for news.
        params = {"stdout": "1", "stderr": "1", "follow": "1"}
        if since is None:
            view = await self.inspect(ref)
            started = docker_time(view.started_at)
            if started and view.status == "running":
                since = started
        if since:
            params["since"] = f"{since - 0.001:.6f}"
        with map_exceptions(self._errors):
            async with self._docker._query(
                f"containers/{ref}/logs",
                method="GET",
                params=params,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None, connect=5),
            ) as response:

                async def lines() -> AsyncIterator[str]:
                    with map_exceptions(self._errors):
                        async for raw in response.content:
                            text = _ANSI.sub("", raw.decode("utf-8", "replace"))
                            yield text.strip("\r\n")

                yield lines()

    async def read_file(self, ref: str, path: str) -> bytes:
        with map_exceptions(self._errors):
            tar = await self._docker.containers.container(ref).get_archive(path)
        with tar:
            for member in tar.getmembers():
                if member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
        raise ContainerGone(f"{path} is not a file in container {ref}", container=ref)

    async def exec(self, ref: str, argv: Sequence[str], *, user: str = "root") -> tuple[int, bytes]:
        output = bytearray()
        with map_exceptions(self._errors):
            execution = await self._docker.containers.container(ref).exec(
                list(argv), user=user, stdout=True, stderr=True
            )
            async with execution.start(detach=False) as stream:
                while (message := await stream.read_out()) is not None:
                    output += message.data
            result = await execution.inspect()
        return int(result.get("ExitCode") or 0), bytes(output)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._docker.close()


@asynccontextmanager
async def open_docker(host: str = ENGINE_HOST) -> AsyncIterator[AioDockerPort]:
    """Open a client for the engine at ``host`` (default: cai's dedicated engine)."""
    port = AioDockerPort(aiodocker.Docker(url=host), host)
    try:
        yield port
    finally:
        await port.aclose()
