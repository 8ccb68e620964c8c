"""The SSH port over asyncssh: the client key, sshd-ready probes, and non-interactive commands.

Every connection authenticates with cai's key only (no agent keys, no password, no
``~/.ssh/config``) and verifies the server against the keys pinned in ``target.known_hosts``;
there is no trust on first use. Everything asyncssh or the socket layer raises is mapped to
:class:`~containai.fsm.SSHUnavailable` or :class:`~containai.fsm.HostKeyMismatch` here.

``run`` reuses connections: a small pool per target holds up to :data:`SESSIONS_PER_CONNECTION`
concurrent sessions on one connection (sshd's ``MaxSessions`` defaults to 10) and keeps an idle
connection for :data:`IDLE_SECONDS`. A pooled connection is keyed by the pinned keys as well, so
re-pinning a target never reuses a connection verified against the old key. ``probe`` always
opens a fresh connection: its point is the handshake.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import asyncssh
import msgspec

from containai.fsm._errors import CaiError, ConfigError, HostKeyMismatch, SSHUnavailable
from containai.orchestrator import _sshfiles
from containai.orchestrator.adapters._errors import map_exceptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from containai.orchestrator._ports import OutputSink, SSHTarget

CONNECT_TIMEOUT = 5.0  #: seconds for TCP connect + key exchange + authentication
SESSIONS_PER_CONNECTION = 8
IDLE_SECONDS = 30.0
EXIT_UNKNOWN = 255  #: like ssh(1): the command's status could not be determined
KEY_COMMENT = "containai"


def ensure_client_key(path: str | os.PathLike[str]) -> str:
    """Return cai's public key line, creating the ed25519 key pair on first use.

    The private key is written at ``path`` (mode 0600, directory 0700), the public one at
    ``path + ".pub"``; a missing ``.pub`` is rebuilt from the private key, and a private key
    readable by others is tightened to 0600 (ssh refuses it otherwise). Two processes creating
    the key at once end up with the same one: the file is linked into place exclusively.

    Raises:
        ConfigError: the private key exists but cannot be read as an OpenSSH key.
    """
    priv = Path(path)
    pub = Path(f"{priv}.pub")
    if not priv.parent.is_dir():
        priv.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not priv.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment=KEY_COMMENT)
        fd, name = tempfile.mkstemp(dir=priv.parent, prefix=f".{priv.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key.export_private_key("openssh"))
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, priv)  # exclusive: the first writer wins, the others read it
        finally:
            tmp.unlink(missing_ok=True)
    if priv.stat().st_mode & 0o077:
        priv.chmod(0o600)
    try:
        key = asyncssh.read_private_key(priv)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ConfigError(f"cannot read cai's SSH key {priv}: {exc}") from exc
    line = key.export_public_key("openssh").decode().strip()
    if not line.endswith(f" {KEY_COMMENT}"):
        line = f"{line} {KEY_COMMENT}" if len(line.split()) == 2 else line
    if pub.exists() and pub.read_text().split()[:2] == line.split()[:2]:
        return pub.read_text().strip()
    fd, tmp_pub = tempfile.mkstemp(dir=pub.parent, prefix=f".{pub.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(line + "\n")
        os.fchmod(f.fileno(), 0o644)
    os.replace(tmp_pub, pub)
    return line


def _describe(target: SSHTarget) -> str:
    return f"{target.user}@{target.host}:{target.port}"


def _error_map(
    target: SSHTarget, timeout: float = CONNECT_TIMEOUT
) -> dict[type[BaseException], Callable[[BaseException], CaiError]]:
    where = _describe(target)
    return {
        asyncssh.HostKeyNotVerifiable: lambda e: HostKeyMismatch(
            f"host key of {where} does not match the key pinned in {target.known_hosts} ({e}); "
            "the container was recreated or something else answers on the port"
        ),
        asyncssh.PermissionDenied: lambda e: SSHUnavailable(
            f"{where} refused cai's key {target.key_path} ({e}); is it in "
            "~agent/.ssh/authorized_keys?"
        ),
        ConnectionRefusedError: lambda e: SSHUnavailable(f"connection refused by {where}"),
        TimeoutError: lambda e: SSHUnavailable(
            f"no SSH handshake with {where} within {timeout:g}s"
        ),
        asyncssh.ChannelOpenError: lambda e: SSHUnavailable(f"{where} refused a session: {e}"),
        asyncssh.DisconnectError: lambda e: SSHUnavailable(f"{where} disconnected: {e}"),
        asyncssh.Error: lambda e: SSHUnavailable(f"SSH to {where} failed: {e}"),
        OSError: lambda e: SSHUnavailable(f"cannot connect to {where}: {e}"),
    }


def _pins(target: SSHTarget) -> tuple[str, ...]:
    host = _host_pattern(target)
    keys = tuple(sorted(_sshfiles.pinned_keys(host, Path(target.known_hosts))))
    if not keys:
        raise HostKeyMismatch(
            f"no host key pinned for {host} in {target.known_hosts}: refusing to trust on first use"
        )
    return keys


_keys: dict[tuple[str, int, int], asyncssh.SSHKey] = {}


def _load_key(path: str) -> asyncssh.SSHKey:
    """The private key at ``path``, parsed once per file version (path, mtime, size)."""
    try:
        info = os.stat(path)
        version = (path, info.st_mtime_ns, info.st_size)
        key = _keys.get(version)
        if key is None:
            key = _keys[version] = asyncssh.read_private_key(path)
        return key
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        raise ConfigError(f"cannot read cai's SSH key {path}: {exc}") from exc


def _exit_status(process: asyncssh.SSHClientProcess[bytes]) -> int:
    if process.exit_status is not None and process.exit_status >= 0:
        return process.exit_status
    if process.exit_signal is not None:
        name = process.exit_signal[0]
        try:
            return 128 + signal.Signals[f"SIG{name}"].value
        except KeyError:
            return EXIT_UNKNOWN
    return EXIT_UNKNOWN


class SSHStatistics(msgspec.Struct, frozen=True, kw_only=True):
    connections_opened: int
    pooled: int


class _Pooled:
    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn
        self.active = 0
        self.idle_since = anyio.current_time()


_PoolKey = tuple[str, int, str, str, bool, tuple[str, ...]]


class AsyncSSHPort:
    """:class:`~containai.orchestrator._ports.SSHPort` over asyncssh (asyncio only).

    Call :meth:`aclose` (``open_default_ports`` does) to close pooled connections.
    """

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.connect_timeout = connect_timeout
        self._pool: dict[_PoolKey, list[_Pooled]] = {}
        self._locks: dict[_PoolKey, anyio.Lock] = {}
        self.connections_opened = 0

    async def _connect(
        self, target: SSHTarget, pins: tuple[str, ...]
    ) -> asyncssh.SSHClientConnection:
        key = _load_key(target.key_path)
        known = asyncssh.import_known_hosts(
            "".join(f"{_host_pattern(target)} {pin}\n" for pin in pins)
        )
        forward: str | bool = False
        if target.forward_agent and os.environ.get("SSH_AUTH_SOCK"):
            forward = os.environ["SSH_AUTH_SOCK"]
        with map_exceptions(_error_map(target, self.connect_timeout)):
            conn = await asyncssh.connect(
                target.host,
                target.port,
                username=target.user,
                client_keys=[key],
                known_hosts=known,
                config=None,  # never the user's ~/.ssh/config: cai's connections are explicit
                agent_path=None,  # IdentitiesOnly: no agent keys
                agent_forwarding=forward,
                preferred_auth=("publickey",),
                password=None,
                connect_timeout=self.connect_timeout,
                keepalive_interval=15,
            )
        self.connections_opened += 1
        return conn

    async def probe(self, target: SSHTarget) -> None:
        """One handshake with key auth against the pinned host key; the connection is kept
        (idle, in the pool) for the next command to this target.

        Raises:
            HostKeyMismatch: no key is pinned for the target, or the server presented another.
            SSHUnavailable: refused, reset, timed out (``connect_timeout``), or key refused.
            ConfigError: cai's private key cannot be read.
        """
        pins = _pins(target)
        conn = await self._connect(target, pins)
        # The handshake just proved this connection: keep it for the first command (the pool
        # holds at most one idle connection per target) instead of paying another one.
        key = _pool_key(target, pins)
        async with self._locks.setdefault(key, anyio.Lock()):
            self._expire()
            pooled = self._pool.setdefault(key, [])
            pooled[:] = [p for p in pooled if not p.conn.is_closed()]
            if not any(p.active == 0 for p in pooled):
                pooled.append(_Pooled(conn))
                return
        conn.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(1):
            await conn.wait_closed()

    async def banner(self, target: SSHTarget) -> None:
        """Read the SSH identification line only (no key exchange, no authentication)."""
        where = _describe(target)
        try:
            with anyio.fail_after(self.connect_timeout):
                stream = await anyio.connect_tcp(target.host, target.port)
                async with stream:
                    line = await stream.receive(256)
        except (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            raise SSHUnavailable(f"no SSH server answers at {where}: {exc!r}") from exc
        if not line.startswith(b"SSH-"):
            raise SSHUnavailable(f"{where} answered but is not an SSH server")

    async def run(
        self,
        target: SSHTarget,
        command: str,
        *,
        stdout: OutputSink,
        stderr: OutputSink,
        stdin: bytes | None = None,
    ) -> int:
        """Run ``command`` (a shell command line, as ssh(1) passes it) and stream its output.

        ``stdin`` is sent and then closed; with None the command reads EOF at once.

        Returns:
            The exit status; ``128 + N`` when the command was killed by signal N; 255 when
            the server reported no status (as ssh(1) does).

        Raises:
            SSHUnavailable: cannot connect, or the connection broke before the command exited.
            HostKeyMismatch: see :meth:`probe`.
            Exception: whatever a sink raised, as it was (the session is closed).

        Cancellation:
            The session's channel is closed; the pooled connection stays usable.
        """
        for attempt in range(2):
            async with self._session(target, fresh=attempt > 0) as (conn, reused):
                try:
                    process = await conn.create_process(command, encoding=None)
                except (asyncssh.Error, OSError) as exc:
                    if reused:  # the server dropped an idle pooled connection: reconnect once
                        conn.close()
                        continue
                    with map_exceptions(_error_map(target)):
                        raise exc from None
                try:
                    with map_exceptions(_error_map(target)):
                        try:
                            async with anyio.create_task_group() as tg:
                                tg.start_soon(_pump, process.stdout, stdout)
                                tg.start_soon(_pump, process.stderr, stderr)
                                if stdin:
                                    process.stdin.write(stdin)
                                    await process.stdin.drain()
                                process.stdin.write_eof()
                        except BaseExceptionGroup as group:
                            raise _sole(group) from None
                        await process.wait_closed()
                except _SinkFailed as failed:
                    raise failed.exc from None
                finally:
                    process.close()
                if process.exit_status is None and conn.is_closed():
                    raise SSHUnavailable(f"connection to {_describe(target)} lost while running")
                return _exit_status(process)
        raise AssertionError("unreachable: the second attempt uses a fresh connection")

    @contextlib.asynccontextmanager
    async def _session(
        self, target: SSHTarget, *, fresh: bool
    ) -> AsyncIterator[tuple[asyncssh.SSHClientConnection, bool]]:
        pins = _pins(target)
        key = _pool_key(target, pins)
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            self._expire()
            pooled = self._pool.setdefault(key, [])
            pooled[:] = [p for p in pooled if not p.conn.is_closed()]
            slot = None
            if not fresh:
                slot = next((p for p in pooled if p.active < SESSIONS_PER_CONNECTION), None)
            reused = slot is not None
            if slot is None:
                slot = _Pooled(await self._connect(target, pins))
                pooled.append(slot)
            slot.active += 1
        try:
            yield slot.conn, reused
        finally:
            slot.active -= 1
            slot.idle_since = anyio.current_time()

    def _expire(self) -> None:
        """Keep one idle connection per target for IDLE_SECONDS; close the other idle ones.
        Runs lazily on each ``run`` (no background task to own)."""
        now = anyio.current_time()
        for pooled in self._pool.values():
            idle = sorted((p for p in pooled if p.active == 0), key=lambda p: -p.idle_since)
            for i, p in enumerate(idle):
                if i > 0 or now - p.idle_since > IDLE_SECONDS:
                    pooled.remove(p)
                    p.conn.close()

    def statistics(self) -> SSHStatistics:
        return SSHStatistics(
            connections_opened=self.connections_opened,
            pooled=sum(len(v) for v in self._pool.values()),
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        conns = [p.conn for pooled in self._pool.values() for p in pooled]
        self._pool.clear()
        for conn in conns:
            conn.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            for conn in conns:
                await conn.wait_closed()


def _pool_key(target: SSHTarget, pins: tuple[str, ...]) -> _PoolKey:
    return (target.host, target.port, target.user, target.key_path, target.forward_agent, pins)


def _host_pattern(target: SSHTarget) -> str:
    if target.port == 22:
        return target.host
    return f"[{target.host}]:{target.port}"


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of a group of plain exceptions (both pumps see the same lost connection),
    so callers and ``map_exceptions`` see a sink's or asyncssh's own exception; a group holding
    anything else (KeyboardInterrupt, ...) stays a group."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = exc.exceptions
        else:
            leaves.append(exc)
    if leaves and all(isinstance(exc, Exception) for exc in leaves):
        return leaves[0]
    return group


class _SinkFailed(Exception):
    """Carries a sink's own exception past ``map_exceptions``: it is the caller's, not SSH's."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


async def _pump(stream: asyncssh.SSHReader[bytes], sink: OutputSink) -> None:
    while chunk := await stream.read(65536):
        try:
            await sink(chunk)
        except Exception as exc:
            raise _SinkFailed(exc) from exc
