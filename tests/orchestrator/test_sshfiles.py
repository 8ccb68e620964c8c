"""The SSH files cai owns: known_hosts pins, per-workspace OpenSSH config, the Include line,
cleanup, port-range helpers; and the system OpenSSH client using the generated config against
a real sshd."""

from __future__ import annotations

import base64
import getpass
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from containai.fsm._errors import ConfigError, SSHUnavailable
from containai.orchestrator import _sshfiles as sf


def _key(seed: int, kind: str = "ssh-ed25519") -> str:
    """A well-formed public key line (the wire blob starts with the type string)."""
    blob = len(kind).to_bytes(4, "big") + kind.encode() + (32).to_bytes(4, "big")
    blob += seed.to_bytes(32, "big")
    return f"{kind} {base64.b64encode(blob).decode()}"


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _known() -> list[str]:
    return sf.known_hosts_path().read_text().splitlines()


# -- known_hosts ------------------------------------------------------------------------------
class TestKnownHosts:
    def test_pin_writes_alias_and_port_entries_0600(self) -> None:
        sf.pin_host_keys("containai-a", 2301, [_key(1) + " root@buildkitsandbox\n"])
        assert _known() == [f"containai-a {_key(1)}", f"[127.0.0.1]:2301 {_key(1)}"]
        assert _mode(sf.known_hosts_path()) == 0o600

    def test_pin_replaces_old_entries_for_alias_and_port(self) -> None:
        sf.pin_host_keys("containai-a", 2301, [_key(1)])
        sf.pin_host_keys("containai-b", 2302, [_key(2)])
        sf.pin_host_keys("containai-a", 2303, [_key(3)])  # recreated: new key, new port
        sf.pin_host_keys("containai-c", 2302, [_key(4)])  # b's old port reused by c
        assert sorted(_known()) == sorted(
            [
                f"containai-b {_key(2)}",
                f"containai-a {_key(3)}",
                f"[127.0.0.1]:2303 {_key(3)}",
                f"containai-c {_key(4)}",
                f"[127.0.0.1]:2302 {_key(4)}",
            ]
        )

    def test_pin_several_key_types(self) -> None:
        keys = [_key(1), _key(2, "ssh-rsa"), _key(3, "ecdsa-sha2-nistp256")]
        sf.pin_host_keys("containai-a", 2301, keys)
        assert sorted(sf.pinned_keys("containai-a")) == sorted(keys)
        assert sorted(sf.pinned_keys("[127.0.0.1]:2301")) == sorted(keys)

    def test_pin_keeps_foreign_lines_and_splits_shared_host_lists(self) -> None:
        sf.known_hosts_path().parent.mkdir(parents=True)
        sf.known_hosts_path().write_text(
            "# mine\n"
            "|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n"
            f"@cert-authority *.example ssh-ed25519 AAAA\n"
            f"containai-a,other.example {_key(9)}\n"
        )
        sf.pin_host_keys("containai-a", 2301, [_key(1)])
        assert _known() == [
            "# mine",
            "|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA",
            "@cert-authority *.example ssh-ed25519 AAAA",
            f"other.example {_key(9)}",
            f"containai-a {_key(1)}",
            f"[127.0.0.1]:2301 {_key(1)}",
        ]

    @pytest.mark.parametrize(
        "line",
        [
            "",
            "ssh-ed25519",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
            "ssh-ed25519 not-base64!",
            _key(1).replace("ssh-ed25519", "ssh-rsa", 1),  # type and blob disagree
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",  # half-written file
        ],
    )
    def test_pin_rejects_malformed_keys(self, line: str) -> None:
        with pytest.raises(SSHUnavailable):
            sf.pin_host_keys("containai-a", 2301, [line])
        assert not sf.known_hosts_path().exists()

    def test_remove_drops_alias_and_its_port_entries(self) -> None:
        sf.pin_host_keys("containai-a", 2301, [_key(1)])
        sf.pin_host_keys("containai-b", 2302, [_key(2)])
        sf.remove_host_keys("containai-a", 2301)
        assert _known() == [f"containai-b {_key(2)}", f"[127.0.0.1]:2302 {_key(2)}"]

    def test_remove_keeps_a_port_pinned_since_for_another_workspace(self) -> None:
        sf.pin_host_keys("containai-a", 2301, [_key(1)])
        sf.pin_host_keys("containai-b", 2301, [_key(2)])  # a stopped, b got its port
        sf.remove_host_keys("containai-a", 2301)
        assert _known() == [f"containai-b {_key(2)}", f"[127.0.0.1]:2301 {_key(2)}"]

    def test_remove_without_port_and_of_unknown_alias(self) -> None:
        sf.remove_host_keys("containai-nothing")
        assert not sf.known_hosts_path().exists() or _known() == []
        sf.pin_host_keys("containai-a", 2301, [_key(1)])
        sf.remove_host_keys("containai-a")
        assert _known() == []


class TestConcurrentPins:
    def test_threads_leave_exactly_one_entry_set_per_alias(self) -> None:
        barrier = threading.Barrier(20)

        def pin(i: int) -> None:
            barrier.wait()
            for round_ in range(5):
                sf.pin_host_keys(f"containai-w{i % 5}", 2300 + i % 5, [_key(100 * i + round_)])

        threads = [threading.Thread(target=pin, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._assert_one_set_each(5)

    def test_processes_leave_exactly_one_entry_set_per_alias(self, home: Path) -> None:
        code = (
            "import sys, base64\n"
            "from containai.orchestrator import _sshfiles as sf\n"
            "i = int(sys.argv[1])\n"
            "def key(seed):\n"
            "    blob = (11).to_bytes(4, 'big') + b'ssh-ed25519' + (32).to_bytes(4, 'big')\n"
            "    blob += seed.to_bytes(32, 'big')\n"
            "    return 'ssh-ed25519 ' + base64.b64encode(blob).decode()\n"
            "for r in range(20):\n"
            "    sf.pin_host_keys(f'containai-p{i % 4}', 2400 + i % 4, [key(1000 * i + r)])\n"
            "    sf.pin_host_keys(f'containai-q{i}', 2500 + i, [key(10**6 + 1000 * i + r)])\n"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(i)], env=dict(os.environ))
            for i in range(8)
        ]
        assert [p.wait(60) for p in procs] == [0] * 8
        lines = _known()
        for alias in [f"containai-p{i}" for i in range(4)] + [f"containai-q{i}" for i in range(8)]:
            assert sum(line.startswith(f"{alias} ") for line in lines) == 1, alias
        ports = [line.split()[0] for line in lines if line.startswith("[")]
        assert sorted(ports) == sorted({*ports})
        assert len(ports) == 12

    @staticmethod
    def _assert_one_set_each(n: int) -> None:
        lines = _known()
        assert len(lines) == 2 * n
        for w in range(n):
            (alias_line,) = [ln for ln in lines if ln.startswith(f"containai-w{w} ")]
            (port_line,) = [ln for ln in lines if ln.startswith(f"[127.0.0.1]:{2300 + w} ")]
            assert alias_line.split()[1:] == port_line.split()[1:]


# -- OpenSSH config ---------------------------------------------------------------------------
class TestHostConfig:
    def test_write_host_config_contents_and_modes(self, home: Path) -> None:
        key = home / ".config" / "containai" / "id_containai"
        path = sf.write_host_config("proj-main", 2345, key_path=key, forward_agent=False)
        assert path == home / ".ssh" / "containai.d" / "proj-main.conf"
        assert _mode(path) == 0o600
        assert _mode(path.parent) == 0o700
        assert _mode(home / ".ssh") == 0o700
        text = path.read_text()
        assert text.startswith("# Generated by cai")
        body = [ln.strip() for ln in text.splitlines() if ln and not ln.startswith("#")]
        assert body == [
            "Host containai-proj-main",
            "HostName 127.0.0.1",
            "Port 2345",
            "User agent",
            f"IdentityFile {key}",
            "IdentitiesOnly yes",
            f"UserKnownHostsFile {home / '.config' / 'containai' / 'known_hosts'}",
            "HostKeyAlias containai-proj-main",
            "StrictHostKeyChecking yes",
            "AddressFamily inet",
            "PreferredAuthentications publickey",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "GSSAPIAuthentication no",
            "ForwardAgent no",
        ]

    def test_write_host_config_forward_agent_and_quoted_paths(self, tmp_path: Path) -> None:
        key = tmp_path / "with space" / "id"
        text = sf.write_host_config("a", 2300, key_path=key, forward_agent=True).read_text()
        assert "    ForwardAgent yes\n" in text
        assert f'    IdentityFile "{key}"\n' in text

    @pytest.mark.parametrize("name", ["../evil", "a/b", "", "-x", "a b"])
    def test_write_host_config_rejects_bad_names(self, name: str) -> None:
        with pytest.raises(ValueError, match="not a container name"):
            sf.write_host_config(name, 2300, key_path="/k", forward_agent=False)

    def test_remove_and_list_host_configs(self, home: Path) -> None:
        sf.write_host_config("a", 2300, key_path="/k", forward_agent=False)
        sf.write_host_config("b", 2301, key_path="/k", forward_agent=False)
        (home / ".ssh" / "containai.d" / "mine.conf").write_text("Host mine\n  Port 1\n")
        assert [(c.name, c.port) for c in sf.list_host_configs()] == [("a", 2300), ("b", 2301)]
        assert sf.remove_host_config("a") is True
        assert sf.remove_host_config("a") is False
        assert [c.name for c in sf.list_host_configs()] == ["b"]

    def test_rewrite_with_new_port(self) -> None:
        sf.write_host_config("a", 2300, key_path="/k", forward_agent=False)
        sf.write_host_config("a", 2310, key_path="/k", forward_agent=False)
        assert [(c.name, c.port) for c in sf.list_host_configs()] == [("a", 2310)]


class TestInclude:
    def test_ensure_include_creates_config_0600(self, home: Path) -> None:
        assert sf.ensure_include() is True
        config = home / ".ssh" / "config"
        assert config.read_text() == "Include ~/.ssh/containai.d/*.conf\n"
        assert _mode(config) == 0o600
        assert _mode(home / ".ssh") == 0o700
        assert _mode(home / ".ssh" / "containai.d") == 0o700

    def test_ensure_include_adds_once_at_top_and_keeps_content(self, home: Path) -> None:
        (home / ".ssh").mkdir(mode=0o700)
        config = home / ".ssh" / "config"
        original = "Host *\n    ServerAliveInterval 30\n\nHost gh\n    HostName github.com"
        config.write_text(original)
        config.chmod(0o644)
        assert sf.ensure_include() is True
        assert sf.ensure_include() is False
        text = config.read_text()
        assert text == "Include ~/.ssh/containai.d/*.conf\n\n" + original + "\n"
        assert _mode(config) == 0o644  # the user's mode is theirs

    def test_ensure_include_moves_an_include_below_host_to_the_top(self, home: Path) -> None:
        (home / ".ssh").mkdir()
        config = home / ".ssh" / "config"
        config.write_text("Host x\n  User y\ninclude ~/.ssh/containai.d/*.conf\n")
        assert sf.ensure_include() is True
        assert config.read_text() == ("Include ~/.ssh/containai.d/*.conf\n\nHost x\n  User y\n")

    @pytest.mark.parametrize(
        "line",
        [
            "Include ~/.ssh/containai.d/*.conf",
            "INCLUDE containai.d/*.conf",
            'Include "{home}/.ssh/containai.d/*.conf"',
            "Include=~/.ssh/containai.d/*.conf",
        ],
    )
    def test_ensure_include_recognizes_variants_after_comments(self, home: Path, line: str) -> None:
        (home / ".ssh").mkdir()
        config = home / ".ssh" / "config"
        text = "# my config\n\n" + line.format(home=home) + "\nHost x\n  User y\n"
        config.write_text(text)
        assert sf.ensure_include() is False
        assert config.read_text() == text

    def test_ensure_include_drops_duplicates(self, home: Path) -> None:
        (home / ".ssh").mkdir()
        config = home / ".ssh" / "config"
        config.write_text(sf.INCLUDE_LINE + "\nHost x\n" + sf.INCLUDE_LINE + "\n")
        assert sf.ensure_include() is True
        assert config.read_text().count("containai.d") == 1

    def test_ensure_include_edits_a_symlinked_config_in_place(
        self, home: Path, tmp_path: Path
    ) -> None:
        dotfiles = tmp_path / "dotfiles"
        dotfiles.mkdir()
        (dotfiles / "ssh_config").write_text("Host x\n")
        (home / ".ssh").mkdir()
        (home / ".ssh" / "config").symlink_to(dotfiles / "ssh_config")
        assert sf.ensure_include() is True
        assert (home / ".ssh" / "config").is_symlink()
        assert (dotfiles / "ssh_config").read_text() == sf.INCLUDE_LINE + "\n\nHost x\n"

    @pytest.mark.skipif(os.getuid() == 0, reason="root writes read-only files anyway")
    def test_ensure_include_read_only_config_is_config_error(
        self, home: Path, tmp_path: Path
    ) -> None:
        store = tmp_path / "store"
        store.mkdir()
        (store / "ssh_config").write_text("Host x\n")
        (store / "ssh_config").chmod(0o444)
        store.chmod(0o555)
        (home / ".ssh").mkdir()
        (home / ".ssh" / "config").symlink_to(store / "ssh_config")
        try:
            with pytest.raises(ConfigError, match="add it as the first line yourself"):
                sf.ensure_include()
        finally:
            store.chmod(0o755)

    def test_ensure_include_unwritable_target_is_config_error(
        self, home: Path, tmp_path: Path
    ) -> None:
        (home / ".ssh").mkdir()
        (home / ".ssh" / "config").symlink_to("/proc/version")
        with pytest.raises(ConfigError, match="a link to /proc/version"):
            sf.ensure_include()


# -- cleanup ----------------------------------------------------------------------------------
class TestCleanup:
    def _setup(self) -> None:
        for i, name in enumerate(["live", "gone", "also-gone"]):
            sf.write_host_config(name, 2300 + i, key_path="/k", forward_agent=False)
            sf.pin_host_keys(f"containai-{name}", 2300 + i, [_key(i)])
        sf.pin_host_keys("containai-orphan", 2399, [_key(9)])  # keys without a config

    def test_cleanup_dry_run_reports_and_keeps_everything(self) -> None:
        self._setup()
        before = _known()
        assert sf.cleanup({"live"}, dry_run=True) == ["also-gone", "gone", "orphan"]
        assert _known() == before
        assert len(sf.list_host_configs()) == 3

    def test_cleanup_removes_configs_and_entries_of_missing_containers(self) -> None:
        self._setup()
        assert sf.cleanup({"live", "unrelated"}, dry_run=False) == ["also-gone", "gone", "orphan"]
        assert [c.name for c in sf.list_host_configs()] == ["live"]
        assert _known() == [f"containai-live {_key(0)}", f"[127.0.0.1]:2300 {_key(0)}"]
        assert sf.cleanup({"live"}, dry_run=False) == []

    def test_cleanup_ignores_foreign_config_files(self, home: Path) -> None:
        self._setup()
        foreign = home / ".ssh" / "containai.d" / "handmade.conf"
        foreign.write_text("Host handmade\n")
        sf.cleanup(set(), dry_run=False)
        assert foreign.exists()
        assert _known() == []


# -- full port range -------------------------------------------------------------------------------
class TestFullPortRange:
    def test_describe_exhausted(self) -> None:
        assert sf.describe_exhausted((2300, 2500)) == (
            "all 201 ports in 2300-2500 are in use; widen [ssh].port_range in "
            "~/.config/containai/config.toml or remove stopped workspaces with `cai rm`"
        )


# -- the system OpenSSH client against a real sshd --------------------------------------------
SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sshd:
    def __init__(self, port: int, host_key: str, authorized_keys: Path, workdir: Path) -> None:
        self.port = port
        self.host_key = host_key
        self.authorized_keys = authorized_keys
        self.workdir = workdir


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH sshd on 127.0.0.1, key-only, for the current user."""
    if not (os.access(SSHD, os.X_OK) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        reason = f"needs {SSHD}, ssh and ssh-keygen (Debian: apt-get install openssh-server)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    work = tmp_path / "sshd"
    work.mkdir()
    host_key = work / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    auth = work / "authorized_keys"
    auth.touch(mode=0o600)
    port = _free_port()
    config = work / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {auth}\nPidFile none\nUsePAM no\nStrictModes no\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n"
    )
    if os.getuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    log: list[str] = []
    listening = threading.Event()
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True
    )

    def drain() -> None:  # sshd says when it listens; keep reading so it never blocks on stderr
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if "Server listening on" in line:
                listening.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not listening.wait(10):
            pytest.fail(f"sshd did not start: {''.join(log)}")
        yield Sshd(port, (host_key.with_suffix(".pub")).read_text(), auth, work)
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def workspace(sshd: Sshd, home: Path) -> Path:
    """What the orchestrator does at sshd-ready: key, pin, host config, Include."""
    from containai.orchestrator.adapters._ssh import ensure_client_key

    key = home / ".config" / "containai" / "id_containai"
    sshd.authorized_keys.write_text(ensure_client_key(key) + "\n")
    sf.pin_host_keys("containai-demo", sshd.port, [sshd.host_key])
    sf.write_host_config(
        "demo", sshd.port, key_path=key, forward_agent=False, user=getpass.getuser()
    )
    sf.ensure_include()
    # OpenSSH expands "~" with the passwd entry, not $HOME, so the test's own config includes
    # the generated directory by absolute path (a real user's ~/.ssh/config uses the tilde).
    config = home / "ssh_config"
    config.write_text(f"Include {sf.host_config_dir()}/*.conf\n")
    return config


def _ssh(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class TestOpenSSH:
    def test_system_ssh_runs_a_command_via_the_alias(self, workspace: Path) -> None:
        out = _ssh(workspace, "containai-demo", "echo hello; exit 7")
        assert (out.returncode, out.stdout) == (7, "hello\n"), out.stderr

    def test_scp_round_trips_a_file(self, workspace: Path, tmp_path: Path) -> None:
        local = tmp_path / "payload.bin"
        local.write_bytes(bytes(range(256)) * 64)
        back = tmp_path / "back.bin"
        for src, dst in (
            (str(local), f"containai-demo:{tmp_path}/remote.bin"),
            (f"containai-demo:{tmp_path}/remote.bin", str(back)),
        ):
            done = subprocess.run(
                ["scp", "-F", str(workspace), "-q", "-o", "BatchMode=yes", src, dst],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        assert back.read_bytes() == local.read_bytes()

    def test_tampered_pin_fails_strict_host_key_checking(self, workspace: Path) -> None:
        port = int(sf.list_host_configs()[0].port or 0)
        sf.pin_host_keys("containai-demo", port, [_key(7)])
        out = _ssh(workspace, "containai-demo", "true")
        assert out.returncode == 255
        assert "Host key verification failed" in out.stderr

    def test_password_auth_is_refused(self, workspace: Path) -> None:
        out = _ssh(
            workspace,
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "containai-demo",
            "true",
        )
        assert out.returncode == 255
        assert "Permission denied (publickey)" in out.stderr

    @pytest.mark.parametrize("anyio_backend", ["asyncio"])
    async def test_asyncssh_port_against_openssh(
        self, workspace: Path, sshd: Sshd, home: Path
    ) -> None:
        from containai.orchestrator._ports import SSHTarget
        from containai.orchestrator.adapters._ssh import AsyncSSHPort

        target = SSHTarget(
            port=sshd.port,
            user=getpass.getuser(),
            key_path=str(home / ".config" / "containai" / "id_containai"),
            known_hosts=str(sf.known_hosts_path()),
        )
        ssh = AsyncSSHPort()
        try:
            await ssh.probe(target)
            chunks: list[bytes] = []

            async def sink(data: bytes) -> None:
                chunks.append(data)

            assert await ssh.run(target, "sh -c 'echo hi; exit 7'", stdout=sink, stderr=sink) == 7
            assert b"".join(chunks) == b"hi\n"
        finally:
            await ssh.aclose()
