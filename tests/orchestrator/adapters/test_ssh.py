"""AsyncSSHPort against an in-process asyncssh server on 127.0.0.1:0 (asyncssh's tests/server.py
pattern): key-only auth, pinned host keys, streamed commands run by a tiny process handler."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import anyio
import asyncssh
import pytest

from containai.fsm._errors import ConfigError, HostKeyMismatch, SSHUnavailable
from containai.orchestrator import _sshfiles
from containai.orchestrator._ports import SSHTarget
from containai.orchestrator.adapters._ssh import AsyncSSHPort, ensure_client_key

ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture(autouse=True)
def home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return isolated_home


async def _shell(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run the requested command with /bin/sh, as sshd would, relaying stdio and the status."""
    proc = await asyncio.create_subprocess_shell(
        process.command or "true",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin
    assert proc.stdout
    assert proc.stderr

    async def feed() -> None:
        assert proc.stdin
        while data := await process.stdin.read(65536):
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()

    async def relay(src: asyncio.StreamReader, dst: asyncssh.SSHWriter[bytes]) -> None:
        while data := await src.read(65536):
            dst.write(data)

    feeder = asyncio.ensure_future(feed())
    await asyncio.gather(relay(proc.stdout, process.stdout), relay(proc.stderr, process.stderr))
    status = await proc.wait()
    feeder.cancel()
    if status < 0:
        import signal

        process.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
    else:
        process.exit(status)


class Server:
    def __init__(self, port: int, host_key: asyncssh.SSHKey) -> None:
        self.port = port
        self.host_key = host_key
        self.connections: list[asyncssh.SSHServerConnection] = []
        self.auth_methods: list[str] = []

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()


@pytest.fixture
def client_key(home: Path) -> tuple[Path, str]:
    path = home / ".config" / "containai" / "id_containai"
    return path, ensure_client_key(path)


@pytest.fixture
async def server(client_key: tuple[Path, str]) -> AsyncIterator[Server]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    state = Server(0, host_key)

    class Handler(asyncssh.SSHServer):
        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            state.connections.append(conn)

        def password_auth_supported(self) -> bool:
            return False  # key-only, as the images' sshd_config

        def kbdint_auth_supported(self) -> bool:
            return False

    acceptor = await asyncssh.create_server(
        Handler,
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(client_key[1] + "\n"),
        process_factory=_shell,
        encoding=None,
    )
    state.port = acceptor.sockets[0].getsockname()[1]
    _sshfiles.pin_host_keys("containai-test", state.port, [state.host_key_line])
    try:
        yield state
    finally:
        acceptor.close()
        for conn in state.connections:
            conn.close()
        await acceptor.wait_closed()


@pytest.fixture
async def port() -> AsyncIterator[AsyncSSHPort]:
    ssh = AsyncSSHPort(connect_timeout=2)
    try:
        yield ssh
    finally:
        await ssh.aclose()


def _target(server: Server, client_key: tuple[Path, str], **kw: object) -> SSHTarget:
    return SSHTarget(
        port=server.port,
        key_path=str(client_key[0]),
        known_hosts=str(_sshfiles.known_hosts_path()),
        **kw,  # type: ignore[arg-type]
    )


class Collect:
    def __init__(self) -> None:
        self.data = b""

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk


# -- ensure_client_key ------------------------------------------------------------------------
class TestEnsureClientKey:
    def test_ensure_client_key_creates_private_0600_and_pub(self, tmp_path: Path) -> None:
        path = tmp_path / "cfg" / "id_containai"
        line = ensure_client_key(path)
        assert line.startswith("ssh-ed25519 ")
        assert line.endswith(" containai")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert Path(f"{path}.pub").read_text() == line + "\n"
        assert sorted(os.listdir(path.parent)) == ["id_containai", "id_containai.pub"]
        assert (
            asyncssh.read_private_key(path).export_public_key().decode().split()[:2]
            == (line.split()[:2])
        )

    def test_ensure_client_key_is_idempotent_and_rebuilds_pub(self, tmp_path: Path) -> None:
        path = tmp_path / "id_containai"
        first = ensure_client_key(path)
        assert ensure_client_key(path) == first
        Path(f"{path}.pub").unlink()
        assert ensure_client_key(path) == first

    def test_ensure_client_key_tightens_loose_mode(self, tmp_path: Path) -> None:
        path = tmp_path / "id_containai"
        ensure_client_key(path)
        path.chmod(0o644)
        ensure_client_key(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_ensure_client_key_concurrent_creators_agree(self, tmp_path: Path) -> None:
        path = tmp_path / "id_containai"
        lines: list[str] = []
        barrier = threading.Barrier(8)

        def create() -> None:
            barrier.wait()
            lines.append(ensure_client_key(path))

        threads = [threading.Thread(target=create) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(lines)) == 1
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    def test_ensure_client_key_garbage_is_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "id_containai"
        path.write_text("not a key\n")
        path.chmod(0o600)
        with pytest.raises(ConfigError, match="cannot read"):
            ensure_client_key(path)


# -- probe ------------------------------------------------------------------------------------
@ASYNCIO_ONLY
class TestProbe:
    async def test_probe_key_auth_succeeds(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        await port.probe(_target(server, client_key))
        assert len(server.connections) == 1

    async def test_probe_unknown_client_key_is_ssh_unavailable(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort, tmp_path: Path
    ) -> None:
        other = tmp_path / "other_key"
        ensure_client_key(other)
        target = _target(server, client_key).__class__(
            port=server.port, key_path=str(other), known_hosts=str(_sshfiles.known_hosts_path())
        )
        with pytest.raises(SSHUnavailable, match="refused cai's key"):
            await port.probe(target)

    async def test_password_auth_is_refused(self, server: Server) -> None:
        """Without the key there is no way in: the server offers publickey only."""
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(
                "127.0.0.1",
                server.port,
                username="agent",
                password="agent",
                client_keys=None,
                agent_path=None,
                known_hosts=None,
                config=None,
                preferred_auth=("password", "keyboard-interactive"),
            )

    async def test_probe_tampered_known_hosts_is_host_key_mismatch(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        _sshfiles.pin_host_keys("containai-test", server.port, [impostor])
        with pytest.raises(HostKeyMismatch, match="does not match the key pinned"):
            await port.probe(_target(server, client_key))

    async def test_probe_without_pinned_key_refuses_to_trust_on_first_use(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        _sshfiles.remove_host_keys("containai-test", server.port)
        with pytest.raises(HostKeyMismatch, match="no host key pinned"):
            await port.probe(_target(server, client_key))
        assert server.connections == []

    async def test_probe_refused_port_is_ssh_unavailable(
        self, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        with closing(socket.socket()) as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        _sshfiles.pin_host_keys("containai-gone", free, [key])
        target = SSHTarget(
            port=free, key_path=str(client_key[0]), known_hosts=str(_sshfiles.known_hosts_path())
        )
        with pytest.raises(SSHUnavailable, match="refused"):
            await port.probe(target)

    async def test_probe_silent_server_times_out_as_ssh_unavailable(
        self, client_key: tuple[Path, str]
    ) -> None:
        with closing(socket.socket()) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            silent = listener.getsockname()[1]
            key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
            _sshfiles.pin_host_keys("containai-silent", silent, [key])
            target = SSHTarget(
                port=silent,
                key_path=str(client_key[0]),
                known_hosts=str(_sshfiles.known_hosts_path()),
            )
            ssh = AsyncSSHPort(connect_timeout=0.3)
            with anyio.fail_after(5), pytest.raises(SSHUnavailable, match=r"within 0\.3s"):
                await ssh.probe(target)

    async def test_probe_missing_client_key_is_config_error(
        self, server: Server, port: AsyncSSHPort, tmp_path: Path
    ) -> None:
        target = SSHTarget(
            port=server.port,
            key_path=str(tmp_path / "nope"),
            known_hosts=str(_sshfiles.known_hosts_path()),
        )
        with pytest.raises(ConfigError):
            await port.probe(target)


# -- run --------------------------------------------------------------------------------------
@ASYNCIO_ONLY
class TestRun:
    async def test_run_streams_output_and_returns_exit_code(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        out, err = Collect(), Collect()
        status = await port.run(
            _target(server, client_key),
            "echo out; echo err >&2; exit 7",
            stdout=out,
            stderr=err,
        )
        assert (status, out.data, err.data) == (7, b"out\n", b"err\n")

    async def test_run_sh_c_exit_7(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        sink = Collect()
        status = await port.run(
            _target(server, client_key), "sh -c 'exit 7'", stdout=sink, stderr=sink
        )
        assert status == 7

    async def test_run_sends_stdin_then_eof(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        out = Collect()
        payload = bytes(range(256)) * 1024
        status = await port.run(
            _target(server, client_key), "cat", stdout=out, stderr=Collect(), stdin=payload
        )
        assert (status, out.data) == (0, payload)

    async def test_run_without_stdin_reads_eof(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        out = Collect()
        with anyio.fail_after(10):
            status = await port.run(
                _target(server, client_key), "cat; echo done", stdout=out, stderr=Collect()
            )
        assert (status, out.data) == (0, b"done\n")

    async def test_run_killed_by_signal_is_128_plus_signal(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        status = await port.run(
            _target(server, client_key), "kill -TERM $$", stdout=Collect(), stderr=Collect()
        )
        assert status == 128 + 15

    async def test_run_ten_concurrent_commands_all_succeed_on_few_connections(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        results: dict[int, tuple[int, bytes]] = {}

        async def one(i: int) -> None:
            out = Collect()
            status = await port.run(
                _target(server, client_key), f"echo {i}; exit {i}", stdout=out, stderr=Collect()
            )
            results[i] = (status, out.data)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(one, i)
        assert results == {i: (i, f"{i}\n".encode()) for i in range(10)}
        assert port.statistics().connections_opened == 2  # 8 sessions per connection

    async def test_run_reuses_a_connection_and_recovers_when_the_server_drops_it(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        target = _target(server, client_key)
        assert await port.run(target, "true", stdout=Collect(), stderr=Collect()) == 0
        assert await port.run(target, "true", stdout=Collect(), stderr=Collect()) == 0
        assert port.statistics().connections_opened == 1
        for conn in server.connections:
            conn.abort()
        assert await port.run(target, "exit 3", stdout=Collect(), stderr=Collect()) == 3
        assert port.statistics().connections_opened == 2

    async def test_run_connection_lost_midway_is_ssh_unavailable(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        async def drop(chunk: bytes) -> None:
            for conn in server.connections:
                conn.abort()

        with anyio.fail_after(10), pytest.raises(SSHUnavailable):
            await port.run(
                _target(server, client_key), "echo go; sleep 30", stdout=drop, stderr=Collect()
            )

    async def test_run_sink_errors_propagate_unwrapped(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        async def broken(chunk: bytes) -> None:
            raise BrokenPipeError("terminal went away")

        target = _target(server, client_key)
        with anyio.fail_after(10), pytest.raises(BrokenPipeError, match="terminal went away"):
            await port.run(target, "echo x", stdout=broken, stderr=Collect())
        assert await port.run(target, "exit 4", stdout=Collect(), stderr=Collect()) == 4

    async def test_run_after_repin_never_reuses_the_old_connection(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        target = _target(server, client_key)
        assert await port.run(target, "true", stdout=Collect(), stderr=Collect()) == 0
        impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        _sshfiles.pin_host_keys("containai-test", server.port, [impostor])
        with pytest.raises(HostKeyMismatch):
            await port.run(target, "true", stdout=Collect(), stderr=Collect())

    async def test_run_cancelled_closes_the_session(
        self, server: Server, client_key: tuple[Path, str], port: AsyncSSHPort
    ) -> None:
        target = _target(server, client_key)
        started = anyio.Event()

        async def first_chunk(chunk: bytes) -> None:
            started.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: port.run(target, "echo go; sleep 30", stdout=first_chunk, stderr=Collect())
            )
            await started.wait()
            tg.cancel_scope.cancel()
        assert await port.run(target, "exit 5", stdout=Collect(), stderr=Collect()) == 5
        assert port.statistics().connections_opened == 1
