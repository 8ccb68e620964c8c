"""The image port over aiodocker: pull, build from an in-memory context, import a root filesystem.

Build failures arrive in-band in the engine's JSON stream; they become :class:`ImageError` naming
the layer's tag, the Dockerfile step that was running and the engine's message. A root filesystem
tarball is imported through ``images/load`` (aiodocker's ``import_image``): it is wrapped here in
the one-layer ``docker save`` format (``manifest.json``, the image config, ``layer.tar``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import re
import tarfile
import tempfile
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiodocker
import aiohttp
import anyio

from containai._defaults import ENGINE_HOST
from containai.fsm._errors import CaiError, DockerError, DockerUnavailable, ImageError
from containai.orchestrator.adapters._errors import map_exceptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


def _errors(host: str, what: str) -> dict[type[BaseException], Callable[[BaseException], CaiError]]:
    def unavailable(exc: BaseException) -> CaiError:
        return DockerUnavailable(
            f"the cai engine at {host} does not answer ({exc}); start it with `sudo cai setup`"
        )

    def engine_error(exc: BaseException) -> CaiError:
        assert isinstance(exc, aiodocker.DockerError)
        message = str(exc.message)
        if exc.status >= 900 or message.startswith("Cannot connect"):
            return unavailable(exc)
        if isinstance(exc, aiodocker.DockerStreamError) or exc.status in (404, 500):
            return ImageError(f"{what}: {message}")
        return DockerError(f"{what}: {message}", status=exc.status)

    return {
        aiodocker.DockerError: engine_error,
        aiohttp.ClientConnectionError: unavailable,
        FileNotFoundError: unavailable,
        ConnectionError: unavailable,
    }


class AioDockerImagePort:
    """:class:`~containai.orchestrator._images.ImagePort` over one aiodocker client."""

    def __init__(self, docker: aiodocker.Docker, host: str) -> None:
        self._docker = docker
        self.host = host

    async def image_exists(self, ref: str) -> bool:
        try:
            with map_exceptions(_errors(self.host, f"inspect {ref}")):
                await self._docker.images.inspect(ref)
        except ImageError:  # 404
            return False
        return True

    async def image_labels(self, ref: str) -> dict[str, str]:
        with map_exceptions(_errors(self.host, f"inspect {ref}")):
            raw = await self._docker.images.inspect(ref)
        return dict((raw.get("Config") or {}).get("Labels") or {})

    async def pull(self, ref: str) -> None:
        with map_exceptions(_errors(self.host, f"pull {ref}")):
            async for _ in self._docker.images.pull(ref, stream=True):
                pass

    async def tag(self, ref: str, new_ref: str) -> None:
        repo, _, tag = new_ref.rpartition(":")
        with map_exceptions(_errors(self.host, f"tag {ref} as {new_ref}")):
            await self._docker.images.tag(ref, repo, tag=tag)

    async def build(
        self,
        context: bytes,
        *,
        tag: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        nocache: bool,
        on_line: Callable[[str], object],
    ) -> None:
        step = "(before the first step)"
        tail: list[str] = []
        pending = ""
        try:
            with map_exceptions(_errors(self.host, f"build {tag}")):
                stream = self._docker.images.build(
                    fileobj=io.BytesIO(gzip.compress(context, compresslevel=1)),
                    encoding="gzip",
                    tag=tag,
                    buildargs=dict(buildargs),
                    labels=dict(labels),
                    nocache=nocache,
                    rm=True,
                    forcerm=True,
                    stream=True,
                )
                async for item in stream:
                    text = item.get("stream")
                    if not isinstance(text, str):
                        continue
                    pending += text
                    *complete, pending = pending.split("\n")
                    for line in complete:
                        line = _ANSI.sub("", line).rstrip("\r")
                        if line.startswith("Step "):
                            step = line
                        if line.strip():
                            tail = [*tail[-9:], line]
                        on_line(line)
        except ImageError as exc:
            last = "\n    ".join(tail[-5:])
            raise ImageError(
                f"building {tag} failed at {step!r}: {exc.message.split(': ', 1)[-1]}"
                + (f"\n  last output:\n    {last}" if last else "")
            ) from exc
        if pending.strip():
            on_line(pending)

    async def import_rootfs(self, rootfs_tar: Path, ref: str, *, labels: Mapping[str, str]) -> None:
        archive = await anyio.to_thread.run_sync(_save_archive, rootfs_tar, ref, dict(labels))
        try:
            with map_exceptions(_errors(self.host, f"import {ref}")), archive.open("rb") as fh:
                async for _ in self._docker.images.import_image(fh, stream=True):
                    pass
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(archive.unlink, True)


def _save_archive(rootfs_tar: Path, ref: str, labels: dict[str, str]) -> Path:
    """Wrap a root filesystem tarball as a one-layer ``docker save`` archive next to it."""
    digest = hashlib.sha256()
    with rootfs_tar.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    diff_id = f"sha256:{digest.hexdigest()}"
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config: dict[str, Any] = {
        "architecture": _ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": created,
        "config": {"Env": [f"PATH={_PATH}"], "Cmd": ["bash"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "cai image build --bootstrap"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    layer_name = f"{digest.hexdigest()}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
    fd, name = tempfile.mkstemp(prefix="cai-image-", suffix=".tar", dir=rootfs_tar.parent)
    out = Path(name)
    with open(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        for arcname, data in (
            (config_name, config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(str(rootfs_tar), arcname=layer_name)
    return out


@asynccontextmanager
async def open_image_port(engine: str = ENGINE_HOST) -> AsyncIterator[AioDockerImagePort]:
    """An image port on ``engine``, closed on exit.

    Raises:
        DockerUnavailable: the engine does not answer.
    """
    with map_exceptions(_errors(engine, "connect")):
        docker = aiodocker.Docker(url=engine)
    try:
        yield AioDockerImagePort(docker, engine)
    finally:
        with anyio.CancelScope(shield=True):
            await docker.close()
