"""Archive-level access to a data volume through the engine API, without starting anything.

A volume is reached through a *helper*: a container that is created (never started) with the
volume bound at ``/mnt/agent-data`` and labelled ``containai.helper=true``. The engine's archive
endpoints work on a stopped container's filesystem, mounts included:

- ``PUT /containers/{id}/archive?path=/mnt/agent-data`` extracts a tar into the volume
  (merging: files in the tar replace files, directories merge, nothing is deleted);
- ``GET /containers/{id}/archive?path=...`` returns a tar of a path (404: it does not exist);
- ``HEAD /containers/{id}/archive?path=...`` stats a path (``X-Docker-Container-Path-Stat``).

Uploads and downloads of whole volumes stream through files in chunks; small reads (one
manifest target) come back as bytes. The helper is removed when its ``async with`` ends, also on
error or cancellation (shielded, bounded).
"""

from __future__ import annotations

import base64
import json
import secrets
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import aiodocker
import aiohttp
import anyio
import msgspec

from containai._defaults import BOOTSTRAP_IMAGE, DATA_MOUNT, ENGINE_HOST, image_ref
from containai.fsm._errors import ContainerGone, DockerError, ImageError
from containai.orchestrator._transfer import PathStat
from containai.orchestrator.adapters._docker import _docker_error, _unavailable
from containai.orchestrator.adapters._errors import map_exceptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

HELPER_LABEL = "containai.helper"
CHUNK = 1 << 16
_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=None, connect=10)
_CLEANUP_SECONDS = 15


class _Stat(msgspec.Struct):
    name: str = ""
    size: int = 0
    mode: int = 0
    linkTarget: str = ""


def _data_path(rel: str) -> str:
    rel = rel.strip("/")
    return f"{DATA_MOUNT}/{rel}" if rel and rel != "." else f"{DATA_MOUNT}/."


class VolumeSession:
    """One helper container on one volume. Paths are relative to the volume root."""

    def __init__(self, docker: aiodocker.Docker, errors: Any, container: str, volume: str):
        self._docker = docker
        self._errors = errors
        self.container = container
        self.volume = volume

    def _url(self) -> str:
        return f"containers/{self.container}/archive"

    async def put_tree(self, data: bytes | Path) -> None:
        """Extract a tar (bytes, or a tar file streamed from disk) into the volume root."""
        body: Any = data if isinstance(data, bytes) else _chunks(data)
        with map_exceptions(self._errors):
            async with self._docker._query(
                self._url(),
                method="PUT",
                params={"path": DATA_MOUNT},
                data=body,
                headers={"Content-Type": "application/x-tar"},
                timeout=_STREAM_TIMEOUT,
            ) as response:
                await response.read()

    async def get_tree(self, rel: str = ".") -> bytes | None:
        """A tar of ``rel`` (``.``: the whole volume), or ``None`` when it does not exist."""
        try:
            with map_exceptions(self._errors):
                async with self._docker._query(
                    self._url(),
                    method="GET",
                    params={"path": _data_path(rel)},
                    timeout=_STREAM_TIMEOUT,
                ) as response:
                    return await response.read()
        except ContainerGone:
            return None

    async def get_tree_to(self, sink: Path, rel: str = ".") -> None:
        """Stream a tar of ``rel`` into the file ``sink`` (created or truncated)."""
        with map_exceptions(self._errors):
            async with self._docker._query(
                self._url(),
                method="GET",
                params={"path": _data_path(rel)},
                timeout=_STREAM_TIMEOUT,
            ) as response:
                async with await anyio.open_file(sink, "wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        await out.write(chunk)

    async def stat(self, rel: str) -> PathStat | None:
        """What the engine reports for ``rel`` in the volume, or ``None`` when it is absent."""
        try:
            with map_exceptions(self._errors):
                async with self._docker._query(
                    self._url(), method="HEAD", params={"path": _data_path(rel)}
                ) as response:
                    header = response.headers.get("X-Docker-Container-Path-Stat", "")
        except (ContainerGone, json.JSONDecodeError):
            # aiodocker fails to parse the empty body of HEAD's 404 before it raises its error
            return None
        raw = msgspec.json.decode(base64.b64decode(header), type=_Stat) if header else _Stat()
        # Go's os.FileMode: the directory bit is 1 << 31, the symlink bit 1 << 27.
        kind: Literal["file", "dir", "symlink"] = (
            "dir" if raw.mode & (1 << 31) else "symlink" if raw.mode & (1 << 27) else "file"
        )
        return PathStat(kind=kind, mode=raw.mode & 0o7777, size=raw.size, link=raw.linkTarget)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as src:
        while chunk := await src.read(CHUNK):
            yield chunk


class AioVolumePort:
    """:class:`~containai.orchestrator._transfer.VolumePort` over one aiodocker client."""

    def __init__(self, docker: aiodocker.Docker, host: str, *, image: str | None = None) -> None:
        self._docker = docker
        self.host = host
        self._image = image
        self._errors = {
            aiodocker.DockerError: lambda exc: _docker_error(exc, host),
            aiohttp.ClientConnectionError: _unavailable(host),
            FileNotFoundError: _unavailable(host),
            ConnectionError: _unavailable(host),
        }

    async def volume_exists(self, name: str) -> bool:
        try:
            with map_exceptions(self._errors):
                await self._docker._query_json(f"volumes/{name}", method="GET")
        except ContainerGone:  # 404
            return False
        return True

    async def create_volume(self, name: str) -> None:
        with map_exceptions(self._errors):
            await self._docker.volumes.create({"Name": name})  # type: ignore[no-untyped-call]

    async def remove_volume(self, name: str) -> None:
        with map_exceptions(self._errors):
            await self._docker._query_json(f"volumes/{name}", method="DELETE")

    async def helper_image(self) -> str:
        """The image helpers are made from: ``--image`` if given, else cai's base image, the
        bootstrap root filesystem, or any image the engine has (a helper never runs)."""
        if self._image:
            return self._image
        for ref in (image_ref("base"), BOOTSTRAP_IMAGE):
            try:
                with map_exceptions(self._errors):
                    await self._docker.images.inspect(ref)
                return ref
            except ContainerGone:
                continue
        with map_exceptions(self._errors):
            images = await self._docker.images.list()
        for image in images:
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            if tags:
                return str(tags[0])
        raise ImageError(
            "the engine has no image to make a volume helper from; run `cai image build`"
        )

    @asynccontextmanager
    async def open_session(self, volume: str) -> AsyncIterator[VolumeSession]:
        """A helper container on ``volume`` for the length of the ``async with``.

        Cancellation:
            The helper is removed in a shielded ``finally`` bounded to a few seconds.
        """
        image = await self.helper_image()
        config: dict[str, Any] = {
            "Image": image,
            "Cmd": ["true"],
            "Entrypoint": [],
            "Labels": {HELPER_LABEL: "true"},
            "NetworkDisabled": True,
            "HostConfig": {"Binds": [f"{volume}:{DATA_MOUNT}"], "NetworkMode": "none"},
        }
        name = f"cai-helper-{secrets.token_hex(4)}"
        with map_exceptions(self._errors):
            created = await self._docker.containers.create(config, name=name)
        cid = str(created.id)
        try:
            yield VolumeSession(self._docker, self._errors, cid, volume)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_SECONDS):
                try:
                    await self._docker.containers.container(cid).delete(force=True, v=False)
                except aiodocker.DockerError as exc:
                    if exc.status != 404:
                        raise DockerError(
                            f"cannot remove volume helper {name}: {exc.message}", status=exc.status
                        ) from exc

    async def list_helpers(self) -> list[str]:
        """Ids of helper containers left behind (by a killed process), for cleanup and tests."""
        with map_exceptions(self._errors):
            found = await self._docker.containers.list(
                all=True, filters=json.dumps({"label": [f"{HELPER_LABEL}=true"]})
            )
        return [str(c.id) for c in found]

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._docker.close()


@asynccontextmanager
async def open_volumes(
    host: str = ENGINE_HOST, *, image: str | None = None
) -> AsyncIterator[AioVolumePort]:
    """Open volume access on the engine at ``host`` (default: cai's dedicated engine)."""
    port = AioVolumePort(aiodocker.Docker(url=host), host, image=image)
    try:
        yield port
    finally:
        await port.aclose()
