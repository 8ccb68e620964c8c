"""An in-memory :class:`~containai.orchestrator._transfer.VolumePort` for tests.

Volumes are dicts of path → node. ``put_tree`` extracts a tar the way the engine does (files
replace files, directories merge, missing parents are created root-owned 0755, nothing is
deleted); ``get_tree`` answers with a tar named the way the engine names it (``.``/``./x`` for
the volume root, ``<basename>/...`` for a subpath).
"""

from __future__ import annotations

import io
import tarfile
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

import msgspec

from containai.orchestrator._transfer import PathStat

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class FakeNode(msgspec.Struct, kw_only=True):
    kind: Literal["file", "dir", "symlink"]
    mode: int
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    link: str = ""
    mtime: int = 0


def _norm(name: str) -> str:
    return "/".join(p for p in PurePosixPath(name).parts if p != ".") or "."


class FakeVolumeSession:
    def __init__(self, nodes: dict[str, FakeNode]) -> None:
        self.nodes = nodes

    async def put_tree(self, data: bytes | Path) -> None:
        raw = data if isinstance(data, bytes) else data.read_bytes()
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
            for member in tar:
                path = _norm(member.name)
                parts = PurePosixPath(path).parts
                for i in range(1, len(parts)):
                    self.nodes.setdefault("/".join(parts[:i]), FakeNode(kind="dir", mode=0o755))
                kind: Literal["file", "dir", "symlink"]
                body = b""
                if member.islnk():
                    self.nodes[path] = msgspec.structs.replace(self.nodes[_norm(member.linkname)])
                    continue
                if member.isdir():
                    kind = "dir"
                elif member.issym():
                    kind = "symlink"
                elif member.isreg():
                    kind = "file"
                    extracted = tar.extractfile(member)
                    body = extracted.read() if extracted is not None else b""
                else:
                    continue
                self.nodes[path] = FakeNode(
                    kind=kind,
                    mode=member.mode,
                    uid=member.uid,
                    gid=member.gid,
                    data=body,
                    link=member.linkname if kind == "symlink" else "",
                    mtime=int(member.mtime),
                )

    async def get_tree(self, rel: str = ".") -> bytes | None:
        rel = _norm(rel)
        if rel not in self.nodes:
            return None
        if rel == ".":
            names = {p: "." if p == "." else f"./{p}" for p in self.nodes}
        else:
            base = PurePosixPath(rel).name
            names = {
                p: base + p[len(rel) :] for p in self.nodes if p == rel or p.startswith(rel + "/")
            }
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(names, key=lambda p: PurePosixPath(p).parts):
                node = self.nodes[path]
                info = tarfile.TarInfo(names[path])
                info.mode, info.uid, info.gid, info.mtime = (
                    node.mode,
                    node.uid,
                    node.gid,
                    node.mtime,
                )
                if node.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif node.kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, node.link
                    tar.addfile(info)
                else:
                    info.size = len(node.data)
                    tar.addfile(info, io.BytesIO(node.data))
        return buf.getvalue()

    async def get_tree_to(self, sink: Path, rel: str = ".") -> None:
        data = await self.get_tree(rel)
        sink.write_bytes(data or b"")

    async def stat(self, rel: str) -> PathStat | None:
        node = self.nodes.get(_norm(rel))
        if node is None:
            return None
        return PathStat(kind=node.kind, mode=node.mode, size=len(node.data), link=node.link)


class FakeVolumes:
    """Volumes in memory; counts the helper sessions opened and still open."""

    def __init__(self) -> None:
        self.volumes: dict[str, dict[str, FakeNode]] = {}
        self.sessions = 0
        self.open_sessions = 0

    async def volume_exists(self, name: str) -> bool:
        return name in self.volumes

    async def create_volume(self, name: str) -> None:
        self.volumes.setdefault(name, {".": FakeNode(kind="dir", mode=0o755, uid=1000, gid=1000)})

    @asynccontextmanager
    async def open_session(self, volume: str) -> AsyncIterator[FakeVolumeSession]:
        await self.create_volume(volume)  # binding a missing named volume creates it
        self.sessions += 1
        self.open_sessions += 1
        try:
            yield FakeVolumeSession(self.volumes[volume])
        finally:
            self.open_sessions -= 1
