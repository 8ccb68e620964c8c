"""``cai import`` / ``cai export`` through the engine's archive API, and restore validation.

The ``docker`` tests use the real dedicated engine with uniquely named volumes, removed (with any
helper container) in teardown; outside CI they skip when the engine does not answer.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from containai._defaults import ENGINE_HOST, ENGINE_SOCKET
from containai.fsm._errors import ConfigError
from containai.model import ImportSection
from containai.model._manifest import Item, build_tar
from containai.orchestrator._transfer import (
    ImportReport,
    TreeEntry,
    export_volume,
    import_archive,
    import_config,
    list_tar,
    list_tar_file,
    volume_listing,
)
from containai.orchestrator.adapters._volumes import AioVolumePort, open_volumes
from containai.orchestrator.testing._fake_volumes import FakeVolumes

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


# -- the engine and its volumes ----------------------------------------------------------------
def _engine_problem() -> str | None:
    if not os.path.exists(ENGINE_SOCKET):
        return f"the cai engine socket {ENGINE_SOCKET} is missing (run `sudo cai setup`)"
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(3)
            sock.connect(ENGINE_SOCKET)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            if b"OK" not in sock.recv(4096):
                return "the cai engine does not answer /_ping"
    except OSError as exc:
        return f"the cai engine does not answer ({exc})"
    return None


@pytest.fixture(scope="module")
def engine() -> str:
    problem = _engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real engine: {problem}")
        pytest.skip(problem)
    return ENGINE_HOST


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", ENGINE_HOST, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def volume_name(engine: str) -> Iterator[Callable[[], str]]:
    """``volume_name()`` gives a fresh unique volume name; every one is removed afterwards,
    with any helper container left on it."""
    made: list[str] = []

    def make() -> str:
        name = f"cai-test-xfer-{uuid.uuid4().hex[:10]}"
        made.append(name)
        return name

    yield make
    for name in made:
        helpers = _docker(
            "ps", "-aq", "--filter", "label=containai.helper=true", "--filter", f"volume={name}"
        )
        for cid in helpers.stdout.split():
            _docker("rm", "-f", cid)
        _docker("volume", "rm", "-f", name)


@pytest.fixture
async def port(engine: str) -> AsyncIterator[AioVolumePort]:
    async with open_volumes(engine) as opened:
        yield opened


# -- a fake $HOME --------------------------------------------------------------------------------
SECRET_TARGETS = {
    "claude/claude.json",
    "claude/.credentials.json",
    "config/gh/hosts.yml",
    "codex/auth.json",
}


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    home = tmp_path / "fake-home"
    _write(
        home, ".gitconfig", "[user]\n\tname = Ada\n\tsigningkey = K\n[credential]\n\thelper = x\n"
    )
    _write(home, ".claude.json", '{"oauthAccount": {"id": 1}}')
    _write(home, ".claude/.credentials.json", '{"token": "t"}', 0o600)
    _write(home, ".claude/settings.json", '{"model": "opus"}')
    _write(home, ".claude/CLAUDE.md", "# rules\n")
    _write(home, ".claude/hooks/check.sh", "#!/bin/sh\nexit 0\n", 0o750)
    _write(home, ".claude/skills/review/SKILL.md", "review things\n")
    (home / ".claude/skills/private").mkdir()
    (home / ".claude/skills/private").chmod(0o700)
    _write(home, ".claude/skills/private/notes.md", "n\n", 0o600)
    os.symlink("review/SKILL.md", home / ".claude/skills/latest")
    os.symlink("/etc/passwd", home / ".claude/skills/escape")
    _write(home, ".codex/config.toml", 'model = "o3"\n')
    _write(home, ".codex/auth.json", '{"key": "k"}', 0o600)
    _write(home, ".config/gh/hosts.yml", "github.com:\n  oauth_token: t\n", 0o600)
    _write(home, ".config/gh/config.yml", "git_protocol: ssh\n")
    _write(home, ".bashrc.d/10-aliases.sh", "alias ll='ls -l'\n")
    _write(home, ".bashrc.d/20-work.priv.sh", "export TOKEN=x\n")
    _write(home, ".tmux.conf", "set -g mouse on\n")
    (home / "tmp.bin").write_bytes(os.urandom(64))  # not in the manifest
    return home


def _comparable(listing: dict[str, TreeEntry]) -> dict[str, tuple[object, ...]]:
    return {p: (e.kind, e.mode, e.uid, e.gid, e.sha256, e.link) for p, e in listing.items()}


def _actions(report: ImportReport) -> dict[str, str]:
    return {c.path: c.action for c in report.changes}


# -- real engine -------------------------------------------------------------------------------
@pytest.mark.docker
@asyncio_only
async def test_import_export_restore_round_trip(
    port: AioVolumePort, volume_name: Callable[[], str], fake_home: Path, tmp_path: Path
) -> None:
    first, second = volume_name(), volume_name()
    report = await import_config(port, first, fake_home)
    actions = _actions(report)
    assert report.created_volume
    for path in (
        "config/git/gitconfig",
        "claude/hooks/check.sh",
        "claude/skills/latest",
        "shell/.bashrc.d/10-aliases.sh",
        "config/tmux/tmux.conf",
        *SECRET_TARGETS,
    ):
        assert actions[path] == "added", path
    assert actions["claude/skills/escape"] == "skipped"
    assert "shell/.bashrc.d/20-work.priv.sh" not in actions

    listing = await volume_listing(port, first)
    assert listing["claude/hooks/check.sh"].mode == 0o750
    assert listing["claude/skills/private"].mode == 0o700
    assert listing["claude/skills/latest"].link == "review/SKILL.md"
    assert listing["config/gh/hosts.yml"].mode == 0o600
    assert {e.uid for p, e in listing.items() if p != "."} == {1000}
    assert "claude/skills/escape" not in listing

    again = await import_config(port, first, fake_home)
    assert again.count("added") == again.count("changed") == 0

    archive = await export_volume(port, first, tmp_path / "one.tar.gz")
    assert archive == tmp_path / "one.tar.gz"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".one")] == []
    restored = await import_archive(port, second, archive)
    assert restored.count("kept") == 0
    again_archive = await export_volume(port, second, tmp_path)
    assert again_archive.name.startswith(f"containai-export-{second}-")

    one, two = list_tar_file(archive), list_tar_file(again_archive)
    assert _comparable(one) == _comparable(two)
    assert _comparable(listing) == _comparable(await volume_listing(port, second))
    assert await port.list_helpers() == []


@pytest.mark.docker
@asyncio_only
async def test_no_secrets_leaves_secret_files_out(
    port: AioVolumePort, volume_name: Callable[[], str], fake_home: Path
) -> None:
    volume = volume_name()
    report = await import_config(port, volume, fake_home, no_secrets=True)
    listing = await volume_listing(port, volume)
    assert SECRET_TARGETS.isdisjoint(listing)
    assert "config/gh/config.yml" in listing
    skipped = {c.path for c in report.changes if c.action == "skipped" and c.secret}
    assert skipped == SECRET_TARGETS


@pytest.mark.docker
@asyncio_only
async def test_dry_run_changes_nothing(
    port: AioVolumePort, volume_name: Callable[[], str], fake_home: Path
) -> None:
    volume = volume_name()
    preview = await import_config(port, volume, fake_home, dry_run=True)
    assert preview.count("added") > 0
    assert not await port.volume_exists(volume)

    await import_config(port, volume, fake_home)
    before = await volume_listing(port, volume)
    _write(fake_home, ".claude/CLAUDE.md", "# new rules\n")
    _write(fake_home, ".claude/agents/new.md", "agent\n")
    preview = await import_config(port, volume, fake_home, dry_run=True)
    actions = _actions(preview)
    assert actions["claude/CLAUDE.md"] == "changed"
    assert actions["claude/agents/new.md"] == "added"
    assert _comparable(await volume_listing(port, volume)) == _comparable(before)


@pytest.mark.docker
@asyncio_only
async def test_restore_merges_into_a_volume_that_has_more(
    port: AioVolumePort, volume_name: Callable[[], str], fake_home: Path, tmp_path: Path
) -> None:
    volume = volume_name()
    (tmp_path / "small").mkdir()
    _write(tmp_path / "small", ".tmux.conf", "set -g mouse off\n")
    await import_config(port, volume, tmp_path / "small")
    archive = await export_volume(port, volume, tmp_path / "small.tar.gz")
    await import_config(port, volume, fake_home)
    report = await import_archive(port, volume, archive)
    actions = _actions(report)
    assert actions["config/tmux/tmux.conf"] == "changed"
    assert actions["claude/CLAUDE.md"] == "kept"


@pytest.mark.docker
@asyncio_only
async def test_export_of_a_missing_volume_is_an_error(
    port: AioVolumePort, volume_name: Callable[[], str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConfigError, match="does not exist"):
        await export_volume(port, volume_name(), out)
    assert list(out.iterdir()) == []


@pytest.mark.docker
@asyncio_only
async def test_helper_is_removed_on_error_and_cancel(
    port: AioVolumePort, volume_name: Callable[[], str]
) -> None:
    volume = volume_name()
    seen: list[str] = []

    async def fail() -> None:
        async with port.open_session(volume) as session:
            seen.append(session.container)
            assert session.container in await port.list_helpers()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert seen[0] not in await port.list_helpers()
    with anyio.CancelScope() as scope:
        async with port.open_session(volume) as session:
            scope.cancel()
            await anyio.sleep(5)
    assert scope.cancelled_caught
    assert session.container not in await port.list_helpers()


@pytest.mark.docker
@asyncio_only
async def test_session_stat_and_get_of_missing_paths(
    port: AioVolumePort, volume_name: Callable[[], str]
) -> None:
    volume = volume_name()
    await port.create_volume(volume)
    assert await port.volume_exists(volume)
    async with port.open_session(volume) as session:
        assert await session.stat("no/such/path") is None
        assert await session.get_tree("no/such/path") is None
        root = await session.stat(".")
        assert root is not None
        assert root.kind == "dir"
        await session.put_tree(
            build_tar(
                [
                    Item(path="d", kind="dir", mode=0o700),
                    Item(path="d/l", kind="symlink", mode=0o777, link="x"),
                ]
            )
        )
        d, link = await session.stat("d"), await session.stat("d/l")
    assert d is not None
    assert (d.kind, d.mode) == ("dir", 0o700)
    assert link is not None
    assert link.kind == "symlink"
    assert link.link == "/mnt/agent-data/d/x"  # the engine reports the target resolved


# -- restore validation (no engine) --------------------------------------------------------------
def _tar(*members: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([_member("/etc/passwd")], "absolute"),
        ([_member("./a/../../x")], r"'\.\.'"),
        ([_member("./dev", tarfile.CHRTYPE)], "devices"),
        ([_member("./fifo", tarfile.FIFOTYPE)], "devices"),
        ([_member("./l", tarfile.SYMTYPE, "/etc/passwd")], "leaves the volume"),
        ([_member("./a/l", tarfile.SYMTYPE, "../../x")], "leaves the volume"),
        ([_member("./h", tarfile.LNKTYPE, "etc/shadow")], "hard link"),
        ([_member("./d", tarfile.SYMTYPE, "e"), _member("./d/x")], "under non-directory"),
    ],
)
def test_restore_validation_refuses(members: list[tarfile.TarInfo], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        list_tar(io.BytesIO(_tar(*members)), validate=True)


def test_restore_validation_accepts_links_that_stay_inside() -> None:
    listing = list_tar(
        io.BytesIO(
            _tar(
                _member(".", tarfile.DIRTYPE),
                _member("./a", tarfile.DIRTYPE),
                _member("./a/f"),
                _member("./a/rel", tarfile.SYMTYPE, "f"),
                _member("./a/abs", tarfile.SYMTYPE, "/mnt/agent-data/a/f"),
                _member("./a/hard", tarfile.LNKTYPE, "./a/f"),
                data=b"",
            )
        ),
        validate=True,
    )
    assert set(listing) == {".", "a", "a/f", "a/rel", "a/abs", "a/hard"}


class _NoEngine:
    """A VolumePort that fails the test if anything reaches it."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the engine was used ({name}) for a bad archive")


async def test_bad_archive_never_reaches_the_engine(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tar(_member("../escape")))
    with pytest.raises(ConfigError, match=r"'\.\.'"):
        await import_archive(_NoEngine(), "unused", bad)  # type: ignore[arg-type]
    bad.write_bytes(b"not a tar at all")
    with pytest.raises(ConfigError, match="not a readable tar"):
        await import_archive(_NoEngine(), "unused", bad)  # type: ignore[arg-type]


# -- the core against the in-memory fake (both backends) --------------------------------------
class TestCoreOnFake:
    async def test_second_import_writes_nothing(self, fake_home: Path) -> None:
        volumes = FakeVolumes()
        first = await import_config(volumes, "v", fake_home)
        assert first.created_volume
        snapshot = dict(volumes.volumes["v"])
        again = await import_config(volumes, "v", fake_home)
        assert again.count("added") == again.count("changed") == 0
        assert again.count("unchanged") == first.count("added")
        assert volumes.volumes["v"] == snapshot
        assert volumes.open_sessions == 0

    async def test_parents_made_for_the_agent(self, fake_home: Path) -> None:
        volumes = FakeVolumes()
        await import_config(volumes, "v", fake_home)
        nodes = volumes.volumes["v"]
        for parent in ("claude", "config", "config/gh", "config/git", "shell", "codex"):
            assert (nodes[parent].kind, nodes[parent].uid, nodes[parent].mode) == (
                "dir",
                1000,
                0o755,
            ), parent

    async def test_config_can_turn_secrets_off(self, fake_home: Path) -> None:
        volumes = FakeVolumes()
        await import_config(volumes, "v", fake_home, config=ImportSection(secrets=False))
        assert SECRET_TARGETS.isdisjoint(volumes.volumes["v"])

    async def test_json_init_keeps_what_the_volume_has(self, tmp_path: Path) -> None:
        empty = tmp_path / "empty"
        empty.mkdir()
        volumes = FakeVolumes()
        report = await import_config(volumes, "v", empty)
        assert _actions(report)["claude/claude.json"] == "added"
        assert volumes.volumes["v"]["claude/claude.json"].data == b"{}\n"
        volumes.volumes["v"]["claude/claude.json"].data = b'{"logged": "in"}'
        again = await import_config(volumes, "v", empty)
        assert "claude/claude.json" not in _actions(again)
        assert volumes.volumes["v"]["claude/claude.json"].data == b'{"logged": "in"}'

    async def test_dry_run_on_a_missing_volume_creates_nothing(self, fake_home: Path) -> None:
        volumes = FakeVolumes()
        report = await import_config(volumes, "v", fake_home, dry_run=True)
        assert report.count("added") > 0
        assert volumes.volumes == {}

    async def test_changed_mode_is_reported_and_written(self, fake_home: Path) -> None:
        volumes = FakeVolumes()
        await import_config(volumes, "v", fake_home)
        (fake_home / ".claude/hooks/check.sh").chmod(0o700)
        report = await import_config(volumes, "v", fake_home)
        change = next(c for c in report.changes if c.path == "claude/hooks/check.sh")
        assert (change.action, change.reason) == ("changed", "mode 0750 → 0700")
        assert volumes.volumes["v"]["claude/hooks/check.sh"].mode == 0o700

    async def test_export_and_restore_reproduce_the_volume(
        self, fake_home: Path, tmp_path: Path
    ) -> None:
        volumes = FakeVolumes()
        await import_config(volumes, "a", fake_home)
        archive = await export_volume(volumes, "a", tmp_path / "a.tar.gz")
        report = await import_archive(volumes, "b", archive)
        assert report.count("added") == len(volumes.volumes["a"]) - 1  # the root exists
        assert volumes.volumes["b"] == volumes.volumes["a"]
