"""What ``cai import`` copies from the host into the data volume, as data.

Theory of operation: :data:`BUILTIN` is the declared manifest, one :class:`Entry` per host path
(relative to ``$HOME`` or ``--from DIR``) with the volume path it lands on (relative to
``/mnt/agent-data``) and flags. :func:`manifest` adds the config's ``[import].additional_paths``.
:func:`collect` reads the host files the entries name and returns the tree to write
(:class:`Item`, keyed by volume path) plus what was skipped and why; :func:`build_tar` turns
that tree into a tar whose members are owned by the agent (uid/gid 1000) and keep their modes.

Rules, in the order :func:`collect` applies them:

1. Later entries win: when two entries produce the same volume path, the later one's content
   is used (``~/.config/tmux/tmux.conf`` over ``~/.tmux.conf``, ``~/.gitconfig`` over
   ``~/.config/git/config``).
2. Secrets (``secret=True``) are skipped with ``no_secrets``; imported ones are made owner-only
   (group and other bits cleared). ``additional_paths`` are never secret.
3. Symlinks are never followed out of the source. An entry's own path may be a symlink into the
   source root (a dotfile manager's link) and is followed; anything else pointing outside is
   skipped and reported. Inside a directory entry, a symlink whose target stays within that
   directory is kept as a relative symlink; any other symlink is skipped and reported.
4. Sockets, FIFOs and devices are skipped; hard links are copied as regular files.
5. ``excludes``: a pattern without ``/`` matches any path component (``*.log``,
   ``node_modules``); one with ``/`` matches a volume path or anything under it
   (``claude/plugins/cache``). ``*.priv.*`` is always excluded from ``shell/.bashrc.d``.

The layout follows the image's ``containai-init`` (units/lib/init.sh), which links home paths
into the volume: ``~/.claude`` → ``claude``, ``~/.claude.json`` → ``claude/claude.json``,
``~/.config/gh`` → ``config/gh``, ``~/.config/tmux`` → ``config/tmux``, ``~/.gitconfig`` →
``config/git/gitconfig``, ``~/.gemini`` → ``gemini``, ``~/.copilot`` → ``copilot``, ``~/.codex``
→ ``codex``; the agent's bashrc sources ``shell/.bashrc.d/*.sh``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

import msgspec

from containai._defaults import AGENT_UID, WORKSPACE_MOUNT

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from containai.model._config import ImportSection

Kind = Literal["file", "dir", "any"]
AGENT_HOME = "/home/agent"
REHOMED_FILES = frozenset({"installed_plugins.json", "known_marketplaces.json"})


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One host path and where it lands in the volume."""

    source: str
    """Relative to the source root (``$HOME`` or ``--from DIR``)."""
    target: str
    """Relative to the volume root (``/mnt/agent-data``)."""
    kind: Kind
    """``file``, ``dir``, or ``any`` (decided by what is on the host; additional paths)."""
    group: str
    secret: bool = False
    optional: bool = False
    """Commonly absent: not worth mentioning when missing."""
    json_init: bool = False
    """When neither host nor volume has the file, create it as ``{}`` (the tool wants JSON)."""
    git_filter: bool = False
    """Written through :func:`filter_gitconfig`."""
    no_priv: bool = False
    """Leave out ``*.priv.*`` files (private snippets stay on the host)."""
    no_system: bool = False
    """Leave out ``.system/`` (a tool's bundled files, reinstalled in the container)."""
    rehome: bool = False
    """In the JSON indexes listed in ``REHOMED_FILES``, host paths under the source root become
    paths under the agent's home (Claude's plugin registry stores absolute paths)."""


def _f(source: str, target: str, group: str, **flags: bool) -> Entry:
    return Entry(source=source, target=target, kind="file", group=group, **flags)


def _d(source: str, target: str, group: str, **flags: bool) -> Entry:
    return Entry(source=source, target=target, kind="dir", group=group, **flags)


#: The built-in manifest, in the order entries are applied (later wins for the same path).
BUILTIN: tuple[Entry, ...] = (
    # git: the XDG file first, so ~/.gitconfig wins when both exist
    _f(".config/git/config", "config/git/gitconfig", "git", git_filter=True, optional=True),
    _f(".gitconfig", "config/git/gitconfig", "git", git_filter=True),
    # GitHub CLI
    _f(".config/gh/config.yml", "config/gh/config.yml", "gh", optional=True),
    _f(".config/gh/hosts.yml", "config/gh/hosts.yml", "gh", secret=True, optional=True),
    # Claude Code
    _f(".claude.json", "claude/claude.json", "claude", secret=True, json_init=True),
    _f(
        ".claude/.credentials.json",
        "claude/.credentials.json",
        "claude",
        secret=True,
        optional=True,
    ),
    _f(".claude/settings.json", "claude/settings.json", "claude", json_init=True),
    _f(".claude/settings.local.json", "claude/settings.local.json", "claude", optional=True),
    _f(".claude/CLAUDE.md", "claude/CLAUDE.md", "claude", optional=True),
    _d(".claude/plugins", "claude/plugins", "claude", optional=True, rehome=True),
    _d(".claude/skills", "claude/skills", "claude", optional=True),
    _d(".claude/commands", "claude/commands", "claude", optional=True),
    _d(".claude/agents", "claude/agents", "claude", optional=True),
    _d(".claude/hooks", "claude/hooks", "claude", optional=True),
    # Codex
    _f(".codex/config.toml", "codex/config.toml", "codex", optional=True),
    _f(".codex/auth.json", "codex/auth.json", "codex", secret=True, optional=True),
    _f(".codex/AGENTS.md", "codex/AGENTS.md", "codex", optional=True),
    _d(".codex/prompts", "codex/prompts", "codex", optional=True),
    _d(".codex/skills", "codex/skills", "codex", optional=True, no_system=True),
    # Gemini
    _f(".gemini/settings.json", "gemini/settings.json", "gemini", optional=True),
    _f(".gemini/GEMINI.md", "gemini/GEMINI.md", "gemini", optional=True),
    _f(
        ".gemini/google_accounts.json",
        "gemini/google_accounts.json",
        "gemini",
        secret=True,
        optional=True,
    ),
    _f(".gemini/oauth_creds.json", "gemini/oauth_creds.json", "gemini", secret=True, optional=True),
    # Copilot CLI
    _f(".copilot/config.json", "copilot/config.json", "copilot", optional=True),
    _f(".copilot/mcp-config.json", "copilot/mcp-config.json", "copilot", optional=True),
    _d(".copilot/skills", "copilot/skills", "copilot", optional=True),
    _d(".copilot/agents", "copilot/agents", "copilot", optional=True),
    # shell: the agent's bashrc sources shell/.bashrc.d/*.sh
    _f(".bash_aliases", "shell/.bashrc.d/00-bash-aliases.sh", "shell", optional=True),
    _d(".bashrc.d", "shell/.bashrc.d", "shell", optional=True, no_priv=True),
    # tmux: the XDG directory last, so its tmux.conf wins over ~/.tmux.conf
    _f(".tmux.conf", "config/tmux/tmux.conf", "tmux", optional=True),
    _d(".config/tmux", "config/tmux", "tmux", optional=True),
)


def manifest(config: ImportSection | None = None) -> list[Entry]:
    """The built-in entries plus ``[import].additional_paths``.

    An additional path ``~/.my-tool/x`` (or ``$HOME/.my-tool/x``) lands on ``my-tool/x``: the
    path under the source root with leading dots of its first component dropped. It is never a
    secret. Absolute paths are kept as given here and checked against the source by
    :func:`collect`.
    """
    entries = list(BUILTIN)
    for raw in config.additional_paths if config is not None else ():
        entries.append(Entry(source=raw, target="", kind="any", group="additional"))
    return entries


def additional_target(rel: str) -> str:
    parts = PurePosixPath(rel).parts
    first = parts[0].lstrip(".") or "dot"
    return str(PurePosixPath(first, *parts[1:]))


# -- git config --------------------------------------------------------------------------------
_HEADER = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"(?:[^"\\]|\\.)*")?\s*\](.*)$')
_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=|$|[;#])")
_DROP_KEYS = {
    ("credential", "helper"),
    ("user", "signingkey"),
    ("commit", "gpgsign"),
    ("tag", "gpgsign"),
}
_DROP_SECTIONS = {"gpg"}  # gpg.program, gpg.format, [gpg "ssh"] ...: all signing machinery
_PRUNE_EMPTY = {"credential", "commit", "tag", "gpg", "user"}


def _continues(line: str) -> bool:
    stripped = line.rstrip("\r\n")
    return (len(stripped) - len(stripped.rstrip("\\"))) % 2 == 1


def filter_gitconfig(text: str, *, workspace: str = WORKSPACE_MOUNT) -> str:
    """The host's git config as the container should see it.

    Drops ``credential.helper`` (any ``[credential "url"]`` too), ``user.signingkey``,
    ``commit.gpgsign``, ``tag.gpgsign`` and every ``gpg.*`` setting (the keys and helpers they
    name live on the host), with their continuation lines; removes credential, commit, tag, gpg
    and user sections left without keys; adds ``[safe] directory = <workspace>``.
    """
    sections: list[tuple[str, list[str]]] = [("", [])]  # (section name, lines incl. header)
    dropping = False
    for line in text.splitlines(keepends=True):
        if dropping:
            dropping = _continues(line)
            continue
        header = _HEADER.match(line)
        rest = line
        if header:
            name = header.group(1).split(".", 1)[0].lower()
            rest = header.group(2)
            sections.append((name, [line[: len(line) - len(rest)].rstrip() + "\n"]))
            if not rest.strip():
                continue
            rest = rest.lstrip() + ("" if rest.endswith("\n") else "\n")
        name, lines = sections[-1]
        key = _KEY.match(rest)
        if key and ((name, key.group(1).lower()) in _DROP_KEYS or name in _DROP_SECTIONS):
            dropping = _continues(rest)
            continue
        lines.append(rest)
    out: list[str] = []
    for name, lines in sections:
        has_key = any(_KEY.match(line) for line in lines[1:])
        if name in _PRUNE_EMPTY and not has_key:
            continue
        out.extend(lines)
    result = "".join(out)
    if result and not result.endswith("\n"):
        result += "\n"
    if not re.search(rf"(?m)^\s*directory\s*=\s*{re.escape(workspace)}\s*$", result):
        result += f"[safe]\n\tdirectory = {workspace}\n"
    return result


# -- reading the host --------------------------------------------------------------------------
class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One path to write into the volume."""

    path: str
    """Relative to the volume root."""
    kind: Literal["file", "dir", "symlink"]
    mode: int
    data: bytes = b""
    link: str = ""
    mtime: int = 0
    secret: bool = False
    source: str = ""
    """The host path it came from (empty when generated)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.kind == "file" else ""


class Skipped(msgspec.Struct, frozen=True, kw_only=True):
    """A host path that was not imported, and why."""

    source: str
    target: str
    reason: str
    secret: bool = False
    missing: bool = False
    """Simply absent on the host (``optional`` entries: expected)."""
    optional: bool = False


class Collection(msgspec.Struct, kw_only=True):
    items: dict[str, Item] = msgspec.field(default_factory=dict)
    skipped: list[Skipped] = msgspec.field(default_factory=list)
    json_init: dict[str, bool] = msgspec.field(default_factory=dict)
    """Volume paths to create as ``{}`` if the volume lacks them too (→ whether secret)."""


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        pattern = pattern.strip("/")
        if "/" in pattern:
            if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/"):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class _Collector:
    def __init__(self, root: Path, excludes: Sequence[str], no_secrets: bool) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.excludes = excludes
        self.no_secrets = no_secrets
        self.out = Collection()

    def skip(self, entry: Entry, source: str, target: str, reason: str, **kw: bool) -> None:
        self.out.skipped.append(
            Skipped(
                source=source,
                target=target,
                reason=reason,
                secret=entry.secret,
                optional=entry.optional,
                **kw,
            )
        )

    def add(self, item: Item) -> None:
        self.out.items[item.path] = item

    def entry(self, entry: Entry) -> None:
        rel, target = entry.source, entry.target
        if entry.group == "additional":
            rel, target, problem = self._additional(rel)
            if problem:
                self.skip(entry, entry.source, target, problem)
                return
        host = self.root / rel
        if entry.secret and self.no_secrets:
            if host.exists() or host.is_symlink():
                self.skip(entry, rel, target, "secret (--no-secrets)")
            return
        if not host.exists() and not host.is_symlink():
            if entry.json_init:
                self.out.json_init[target] = entry.secret  # reported by whoever creates it
            else:
                self.skip(entry, rel, target, "not on the host", missing=True)
            return
        real = host.resolve()
        if not real.exists():
            self.skip(entry, rel, target, f"dangling symlink to {os.readlink(host)}")
            return
        if not _inside(real, self.real_root):
            self.skip(entry, rel, target, f"symlink to {real}, outside {self.root}")
            return
        kind = entry.kind
        if kind == "any":
            kind = "dir" if real.is_dir() else "file"
        if kind == "dir" and not real.is_dir():
            self.skip(entry, rel, target, "expected a directory")
            return
        if kind == "file" and not real.is_file():
            self.skip(entry, rel, target, "expected a regular file")
            return
        if _excluded(target, self.excludes):
            self.skip(entry, rel, target, "excluded by import.excludes")
            return
        if kind == "file":
            self._file(entry, real, rel, target)
        else:
            self._tree(entry, real, rel, target)

    def _additional(self, raw: str) -> tuple[str, str, str]:
        if raw.startswith("~/"):
            rel = raw[2:].strip("/")
        else:
            home = Path.home()
            path = Path(raw)
            if _inside(path, home):
                rel = str(path.relative_to(home))
            elif _inside(path, self.root):
                rel = str(path.relative_to(self.root))
            else:
                return raw, "", f"not under the source {self.root}"
        if not rel or rel == ".":
            return raw, "", "names the whole source"
        return rel, additional_target(rel), ""

    def _file(self, entry: Entry, real: Path, rel: str, target: str) -> None:
        try:
            st, data = real.stat(), real.read_bytes()
        except OSError as exc:
            self.skip(entry, rel, target, f"cannot read: {exc.strerror}")
            return
        if entry.git_filter:
            data = filter_gitconfig(data.decode("utf-8", "replace")).encode()
        self.add(self._item(entry, target, "file", st, data=data, source=rel))

    def _item(
        self,
        entry: Entry,
        path: str,
        kind: Literal["file", "dir", "symlink"],
        st: os.stat_result,
        *,
        source: str,
        data: bytes = b"",
        link: str = "",
    ) -> Item:
        mode = stat.S_IMODE(st.st_mode)
        if entry.secret:
            mode &= 0o700
        if kind == "symlink":
            mode = 0o777
        return Item(
            path=path,
            kind=kind,
            mode=mode,
            mtime=int(st.st_mtime),
            secret=entry.secret,
            source=source,
            data=data,
            link=link,
        )

    def _tree(self, entry: Entry, real: Path, rel: str, target: str) -> None:
        self.add(self._item(entry, target, "dir", real.stat(), source=rel))

        def unreadable(exc: OSError) -> None:
            sub = Path(exc.filename or real).relative_to(real).as_posix()
            self.skip(entry, f"{rel}/{sub}", f"{target}/{sub}", f"cannot read: {exc.strerror}")

        for dirpath, dirnames, filenames in os.walk(real, onerror=unreadable):
            here = Path(dirpath)
            for name in sorted([*dirnames, *filenames]):
                path = here / name
                sub = path.relative_to(real).as_posix()
                vpath, spath = f"{target}/{sub}", f"{rel}/{sub}"
                if (entry.no_system and ".system" in PurePosixPath(sub).parts) or (
                    entry.no_priv and fnmatch.fnmatchcase(name, "*.priv.*")
                ):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                if _excluded(vpath, self.excludes):
                    self.skip(entry, spath, vpath, "excluded by import.excludes")
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    if name in dirnames:
                        dirnames.remove(name)  # os.walk does not descend links; be explicit
                    self._link(entry, path, real, spath, vpath, st)
                elif stat.S_ISDIR(st.st_mode):
                    self.add(self._item(entry, vpath, "dir", st, source=spath))
                elif stat.S_ISREG(st.st_mode):
                    try:
                        data = path.read_bytes()
                    except OSError as exc:
                        self.skip(entry, spath, vpath, f"cannot read: {exc.strerror}")
                        continue
                    if entry.rehome and name in REHOMED_FILES:
                        data = self._rehome(data)
                    self.add(self._item(entry, vpath, "file", st, data=data, source=spath))
                else:
                    self.skip(entry, spath, vpath, "not a regular file, directory or symlink")

    def _rehome(self, data: bytes) -> bytes:
        for root in {str(self.root), str(self.real_root)}:
            data = data.replace(f"{root}/".encode(), f"{AGENT_HOME}/".encode())
        return data

    def _link(
        self, entry: Entry, path: Path, top: Path, spath: str, vpath: str, st: os.stat_result
    ) -> None:
        raw = os.readlink(path)
        dest = Path(os.path.normpath(path.parent / raw))
        if not _inside(dest, top):
            self.skip(entry, spath, vpath, f"symlink to {raw}, outside {entry.source}")
            return
        relative = os.path.relpath(dest, path.parent)
        self.add(self._item(entry, vpath, "symlink", st, link=relative, source=spath))


def collect(
    root: Path,
    entries: Iterable[Entry],
    *,
    no_secrets: bool = False,
    excludes: Sequence[str] = (),
) -> Collection:
    """Read what ``entries`` name under ``root`` (blocking file I/O: run it in a thread).

    Args:
        root: the source root, ``$HOME`` or ``--from DIR``.
        entries: usually :func:`manifest`.
        no_secrets: skip entries marked secret.
        excludes: ``[import].excludes`` patterns (see the module docstring).

    Returns:
        The items to write keyed by volume path (later entries win), the skipped paths with
        their reasons, and the ``json_init`` targets whose host file is missing.
    """
    collector = _Collector(root.absolute(), tuple(excludes), no_secrets)
    for entry in entries:
        collector.entry(entry)
    return collector.out


def parents(path: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b"]``."""
    parts = PurePosixPath(path).parts
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _order(path: str) -> tuple[str, ...]:
    return PurePosixPath(path).parts


def build_tar(items: Iterable[Item], *, uid: int = AGENT_UID, prefix: str = "") -> bytes:
    """A tar of ``items`` (parents before children), owned by ``uid:uid``, modes kept."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in sorted(items, key=lambda i: _order(i.path)):
            info = tarfile.TarInfo(prefix + item.path)
            info.mode, info.mtime = item.mode, item.mtime
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            if item.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif item.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, item.link
                tar.addfile(info)
            else:
                info.size = len(item.data)
                tar.addfile(info, io.BytesIO(item.data))
    return buf.getvalue()
