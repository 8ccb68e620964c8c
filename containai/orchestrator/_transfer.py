"""``cai import`` and ``cai export``: moving configuration and whole volumes in and out.

Theory of operation: the volume is reached through a :class:`VolumePort` whose sessions are a
never-started helper container with the volume mounted (the engine's archive API; see
``adapters/_volumes.py``). Nothing here starts a container or runs a command in one, so a volume
can be filled before its first workspace exists.

- :func:`import_config` reads the host files the manifest names (``model/_manifest.py``),
  fetches the same targets from the volume, and writes only what is new or different, as one
  tar owned by the agent. The :class:`ImportReport` says, per path, added / changed /
  unchanged / skipped and why. ``dry_run`` computes the same report and writes nothing (a
  missing volume is neither created nor an error: everything would be added).
- :func:`export_volume` streams the whole volume out as a tar, gzips it next to the output,
  reads it back completely (every member, every byte), and only then renames it into place.
- :func:`import_archive` validates an export (no absolute paths, no ``..``, no devices, FIFOs or
  sockets, symlinks and hard links only to places inside the volume) before the engine sees it,
  then hands the same file to the engine. Restoring into an empty volume reproduces it exactly
  (paths, types, modes, owners, contents); into a non-empty one it merges, and the report lists
  the paths the archive does not have as ``kept``: the archive API cannot delete.

Blocking work (reading host files, hashing, gzip) runs in worker threads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Literal, Protocol

import anyio
import anyio.to_thread
import msgspec

from containai._defaults import AGENT_UID, DATA_MOUNT
from containai.fsm._errors import ConfigError
from containai.model._manifest import Item, build_tar, collect, manifest, parents

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from containai.model._config import ImportSection

Action = Literal["added", "changed", "unchanged", "skipped", "kept"]
_CHUNK = 1 << 20


# -- the port ----------------------------------------------------------------------------------
class PathStat(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine says about one path in a volume."""

    kind: Literal["file", "dir", "symlink"]
    mode: int
    size: int = 0
    link: str = ""
    """A symlink's target as the engine reports it: resolved to an absolute path."""


class VolumeSession(Protocol):
    """Archive access to one volume; paths are relative to its root."""

    async def put_tree(self, data: bytes | Path) -> None: ...
    async def get_tree(self, rel: str = ".") -> bytes | None: ...
    async def get_tree_to(self, sink: Path, rel: str = ".") -> None: ...
    async def stat(self, rel: str) -> PathStat | None: ...


class VolumePort(Protocol):
    async def volume_exists(self, name: str) -> bool: ...
    async def create_volume(self, name: str) -> None: ...
    def open_session(self, volume: str) -> AbstractAsyncContextManager[VolumeSession]: ...


# -- listings ----------------------------------------------------------------------------------
class TreeEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One member of a volume or archive: enough to compare two trees."""

    path: str
    """Relative to the volume root; ``.`` is the root itself."""
    kind: Literal["file", "dir", "symlink", "hardlink"]
    mode: int
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""
    link: str = ""


def _normalise(name: str) -> str:
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    return "/".join(parts) or "."


def _kind(member: tarfile.TarInfo) -> Literal["file", "dir", "symlink", "hardlink"] | None:
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return None


def _check_member(member: tarfile.TarInfo, path: str, seen: dict[str, TreeEntry]) -> None:
    if member.name.startswith("/"):
        raise ConfigError(f"archive member {member.name!r}: absolute path")
    if ".." in PurePosixPath(member.name).parts:
        raise ConfigError(f"archive member {member.name!r}: '..' in the path")
    if _kind(member) is None:
        raise ConfigError(f"archive member {member.name!r}: devices, FIFOs and sockets refused")
    for parent in parents(path):
        if parent in seen and seen[parent].kind != "dir":
            raise ConfigError(f"archive member {member.name!r}: under non-directory {parent}")
    if member.issym():
        link = member.linkname
        if link.startswith("/"):
            inside = link == DATA_MOUNT or link.startswith(DATA_MOUNT + "/")
        else:
            base = PurePosixPath(path).parent
            inside = not os.path.normpath(str(base / link)).startswith("..")
        if not inside:
            raise ConfigError(
                f"archive member {member.name!r}: symlink to {link} leaves the volume"
            )
    if member.islnk():
        target = _normalise(member.linkname)
        if target not in seen or seen[target].kind != "file":
            raise ConfigError(f"archive member {member.name!r}: hard link to unknown {target}")


def list_tar(fileobj: IO[bytes], *, base: str = "", validate: bool = False) -> dict[str, TreeEntry]:
    """Read a tar stream (plain or compressed) into ``{path: TreeEntry}`` with sha256 of files.

    Args:
        fileobj: the tar, read once front to back.
        base: a volume directory the member names are relative to (for a fetched subpath).
        validate: refuse what a restore must not write (see :func:`import_archive`).

    Raises:
        ConfigError: ``validate`` found a bad member, or the stream is not a readable tar.
    """
    out: dict[str, TreeEntry] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                path = _normalise(f"{base}/{member.name}" if base else member.name)
                if validate:
                    _check_member(member, path, out)
                kind = _kind(member)
                if kind is None:
                    continue
                digest = ""
                if kind == "file":
                    h = hashlib.sha256()
                    src = tar.extractfile(member)
                    if src is not None:
                        while chunk := src.read(_CHUNK):
                            h.update(chunk)
                    digest = h.hexdigest()
                elif kind == "hardlink":
                    digest = out[_normalise(member.linkname)].sha256 if validate else ""
                out[path] = TreeEntry(
                    path=path,
                    kind=kind,
                    mode=member.mode & 0o7777,
                    uid=member.uid,
                    gid=member.gid,
                    size=member.size,
                    sha256=digest,
                    link=member.linkname if kind in ("symlink", "hardlink") else "",
                )
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"not a readable tar archive: {exc}") from None
    return out


def list_tar_file(path: Path, *, validate: bool = False) -> dict[str, TreeEntry]:
    with path.open("rb") as src:
        return list_tar(src, validate=validate)


# -- reports -----------------------------------------------------------------------------------
class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What happened (or, in a dry run, would happen) to one volume path."""

    path: str
    action: Action
    kind: str = ""
    reason: str = ""
    source: str = ""
    secret: bool = False


class ImportReport(msgspec.Struct, frozen=True, kw_only=True):
    """The result of :func:`import_config` or :func:`import_archive`."""

    volume: str
    source: str
    dry_run: bool
    changes: tuple[Change, ...]
    created_volume: bool = False

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def paths(self, action: Action) -> list[str]:
        return [c.path for c in self.changes if c.action == action]


def _compare(item: Item | TreeEntry, sha: str, old: TreeEntry | None) -> tuple[Action, str]:
    if old is None:
        return "added", ""
    if old.kind != item.kind:
        return "changed", f"{old.kind} → {item.kind}"
    what = []
    if item.kind == "file" and old.sha256 != sha:
        what.append("content")
    if item.kind == "symlink" and old.link != item.link:
        what.append(f"link {old.link} → {item.link}")
    if item.kind != "symlink" and old.mode != item.mode:
        what.append(f"mode {old.mode:04o} → {item.mode:04o}")
    uid = item.uid if isinstance(item, TreeEntry) else AGENT_UID
    if old.uid != uid:
        what.append(f"owner {old.uid} → {uid}")
    return ("changed", ", ".join(what)) if what else ("unchanged", "")


def _roots(paths: set[str]) -> list[str]:
    return sorted(p for p in paths if not any(q in paths for q in parents(p)))


# -- import from the host ----------------------------------------------------------------------
async def _current(session: VolumeSession, roots: list[str]) -> dict[str, TreeEntry]:
    current: dict[str, TreeEntry] = {}
    for root in roots:
        data = await session.get_tree(root)
        if data is not None:
            base = str(PurePosixPath(root).parent)
            listing = await anyio.to_thread.run_sync(
                partial(list_tar, _bytes_io(data), base="" if base == "." else base)
            )
            current.update(listing)
    return current


def _bytes_io(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


async def import_config(
    port: VolumePort,
    volume: str,
    source: Path,
    *,
    config: ImportSection | None = None,
    dry_run: bool = False,
    no_secrets: bool = False,
) -> ImportReport:
    """Sync the host configuration the manifest names from ``source`` into ``volume``.

    Args:
        port: volume access (``adapters._volumes.open_volumes`` or a fake).
        volume: the data volume; created when missing (not in a dry run).
        source: ``$HOME`` or ``--from DIR``.
        config: ``[import]``: additional paths, excludes, and ``secrets = false``.
        dry_run: compute the report, write nothing, create nothing.
        no_secrets: skip secret entries (also when ``config.secrets`` is false).

    Returns:
        Per volume path: added, changed, unchanged or skipped, with the reason.

    Raises:
        ConfigError: ``source`` is not a directory.
        BackendError: the engine failed.

    Cancellation:
        The helper container is removed (shielded). The engine extracts the tar as it reads
        it, so a cancelled write can leave part of it in the volume; import is idempotent, so
        running it again completes it.
    """
    if not source.is_dir():
        raise ConfigError(f"import source {source} is not a directory")
    skip_secrets = no_secrets or (config is not None and not config.secrets)
    collection = await anyio.to_thread.run_sync(
        partial(
            collect,
            source,
            manifest(config),
            no_secrets=skip_secrets,
            excludes=config.excludes if config is not None else (),
        )
    )
    items = dict(collection.items)
    changes: list[Change] = []
    exists = await port.volume_exists(volume)
    created = False
    if not exists and not dry_run:
        await port.create_volume(volume)
        created = exists = True
    if exists:
        async with port.open_session(volume) as session:
            wanted = set(items) | set(collection.json_init)
            current = await _current(session, _roots(wanted))
            writes = _plan(items, collection.json_init, current, changes)
            missing_parents = sorted(
                {p for item in writes for p in parents(item.path)} - set(items) - set(current)
            )
            for parent in missing_parents:
                if await session.stat(parent) is None:
                    writes.append(Item(path=parent, kind="dir", mode=0o755, mtime=int(time.time())))
            if writes and not dry_run:
                await session.put_tree(build_tar(writes))
    else:
        writes = _plan(items, collection.json_init, {}, changes)
    for skipped in collection.skipped:
        if skipped.missing and skipped.target in items:
            continue  # another entry provides it (~/.gitconfig for a missing XDG file)
        if skipped.missing:
            reason = "not on the host" + (" (optional)" if skipped.optional else "")
        else:
            reason = skipped.reason
        changes.append(
            Change(
                path=skipped.target or skipped.source,
                action="skipped",
                reason=reason,
                source=skipped.source,
                secret=skipped.secret,
            )
        )
    return ImportReport(
        volume=volume,
        source=str(source),
        dry_run=dry_run,
        changes=tuple(changes),
        created_volume=created,
    )


def _plan(
    items: dict[str, Item],
    json_init: dict[str, bool],
    current: dict[str, TreeEntry],
    changes: list[Change],
) -> list[Item]:
    writes: list[Item] = []
    now = int(time.time())
    for target, secret in json_init.items():
        if target not in items and target not in current:
            items[target] = Item(
                path=target,
                kind="file",
                mode=0o600 if secret else 0o644,
                data=b"{}\n",
                mtime=now,
                secret=secret,
            )
    for path in sorted(items, key=lambda p: PurePosixPath(p).parts):
        item = items[path]
        old = current.get(path)
        if old is not None and "dir" in (old.kind, item.kind) and old.kind != item.kind:
            changes.append(
                Change(
                    path=path,
                    action="skipped",
                    kind=item.kind,
                    reason=f"the volume has a {old.kind} here",
                    source=item.source,
                    secret=item.secret,
                )
            )
            continue
        action, reason = _compare(item, item.sha256, old)
        if not item.source and action == "added":
            reason = "created as {} (the tool expects JSON)"
        changes.append(
            Change(
                path=path,
                action=action,
                kind=item.kind,
                reason=reason,
                source=item.source,
                secret=item.secret,
            )
        )
        if action != "unchanged":
            writes.append(item)
    return writes


# -- export ------------------------------------------------------------------------------------
def default_export_name(volume: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"containai-export-{volume}-{stamp}.tar.gz"


def _gzip_and_verify(raw: Path, out: Path) -> int:
    with raw.open("rb") as src, gzip.open(out, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
    return len(list_tar_file(out))


async def export_volume(port: VolumePort, volume: str, output: Path | None = None) -> Path:
    """Write ``volume`` as a ``.tar.gz`` (members ``.``, ``./claude``, ...; owners and modes
    as in the volume).

    Args:
        port: volume access.
        volume: the data volume.
        output: a file, or an existing directory for the default name
            ``containai-export-<volume>-<UTC stamp>.tar.gz``; default the current directory.

    Returns:
        The absolute path written.

    Raises:
        ConfigError: the volume does not exist, or the output's directory does not.

    Cancellation:
        The output appears only complete and verified (temp file in the same directory, read
        back in full, then renamed); temporary files are removed on any exit.
    """
    target = (output or Path.cwd()).expanduser().absolute()
    if target.is_dir():
        target = target / default_export_name(volume)
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write {target}: {target.parent} is not a directory")
    if not await port.volume_exists(volume):
        raise ConfigError(f"data volume {volume!r} does not exist")
    fd, raw_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tar", dir=target.parent)
    os.close(fd)
    raw = Path(raw_name)
    part = raw.with_suffix(".part")
    try:
        async with port.open_session(volume) as session:
            await session.get_tree_to(raw)
        await anyio.to_thread.run_sync(_gzip_and_verify, raw, part)
        os.replace(part, target)
    finally:
        raw.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    return target


# -- restore -----------------------------------------------------------------------------------
async def import_archive(
    port: VolumePort, volume: str, archive: Path, *, dry_run: bool = False
) -> ImportReport:
    """Restore an export (``cai export``'s ``.tar.gz``, or a plain tar) into ``volume``.

    Raises:
        ConfigError: the archive is unreadable or has a member a restore refuses (absolute
            path, ``..``, device/FIFO/socket, a symlink or hard link leading outside the volume,
            a member under a symlink). Nothing is written then.

    Returns:
        Per path: added, changed or unchanged relative to the volume, and ``kept`` for paths
        the volume has and the archive lacks (a restore merges; it cannot delete).
    """
    if not archive.is_file():
        raise ConfigError(f"archive {archive} is not a file")
    wanted = await anyio.to_thread.run_sync(partial(list_tar_file, archive, validate=True))
    exists = await port.volume_exists(volume)
    created = False
    current: dict[str, TreeEntry] = {}
    if not exists and not dry_run:
        await port.create_volume(volume)
        created = exists = True
    if exists:
        async with port.open_session(volume) as session:
            current = await _volume_listing(session)
            if not dry_run:
                await session.put_tree(archive)
    changes: list[Change] = []
    for path, entry in wanted.items():
        action, reason = _compare(entry, entry.sha256, current.get(path))
        changes.append(Change(path=path, action=action, kind=entry.kind, reason=reason))
    for path, entry in current.items():
        if path not in wanted:
            changes.append(
                Change(
                    path=path,
                    action="kept",
                    kind=entry.kind,
                    reason="in the volume, not in the archive",
                )
            )
    return ImportReport(
        volume=volume,
        source=str(archive),
        dry_run=dry_run,
        changes=tuple(changes),
        created_volume=created,
    )


async def _volume_listing(session: VolumeSession) -> dict[str, TreeEntry]:
    fd, name = tempfile.mkstemp(prefix=".cai-volume.", suffix=".tar")
    os.close(fd)
    raw = Path(name)
    try:
        await session.get_tree_to(raw)
        return await anyio.to_thread.run_sync(list_tar_file, raw)
    finally:
        raw.unlink(missing_ok=True)


async def volume_listing(port: VolumePort, volume: str) -> dict[str, TreeEntry]:
    """Every path in ``volume`` with kind, mode, owner and sha256 (for diffs and tests)."""
    async with port.open_session(volume) as session:
        return await _volume_listing(session)
