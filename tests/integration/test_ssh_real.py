"""SSH access on the real engine: the system OpenSSH client through the generated config,
scp, exec exit codes, many workspaces and many sessions at once, attached in the events."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def _ssh_config(cai_env) -> str:
    """A config that includes the generated files by absolute path: OpenSSH expands ``~`` in
    ``Include`` from the passwd entry, not $HOME, so the test's isolated HOME needs -F."""
    home = Path(cai_env["HOME"])
    path = home / "test_ssh_config"
    path.write_text(f"Include {home}/.ssh/containai.d/*.conf\n")
    return str(path)


def _name(cai, path: Path) -> str:
    rows = json.loads(cai("ps", "--json").stdout)
    return next(r["name"] for r in rows if r["workspace"] == str(path))


def test_system_ssh_via_alias_with_strict_host_key_checking(cai, cai_env, workspaces) -> None:
    (path,) = workspaces("sshy")
    cai("up", str(path))
    name = _name(cai, path)
    home = Path(cai_env["HOME"])
    assert "Include ~/.ssh/containai.d/*.conf" in (home / ".ssh" / "config").read_text()
    out = subprocess.run(
        [
            "ssh",
            "-F",
            _ssh_config(cai_env),
            "-o",
            "BatchMode=yes",
            f"containai-{name}",
            "cat ~/workspace/README; whoami",
        ],
        env=cai_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["workspace", "sshy", "agent"]

    local = path.parent / "payload.bin"
    local.write_bytes(bytes(range(256)) * 64)
    back = path.parent / "back.bin"
    for argv in (
        [
            "scp",
            "-F",
            _ssh_config(cai_env),
            "-q",
            "-o",
            "BatchMode=yes",
            str(local),
            f"containai-{name}:/tmp/payload.bin",
        ],
        [
            "scp",
            "-F",
            _ssh_config(cai_env),
            "-q",
            "-o",
            "BatchMode=yes",
            f"containai-{name}:/tmp/payload.bin",
            str(back),
        ],
    ):
        assert subprocess.run(argv, env=cai_env, timeout=30, check=False).returncode == 0
    assert back.read_bytes() == local.read_bytes()


def test_password_auth_is_refused_and_a_tampered_known_hosts_fails(
    cai, cai_env, workspaces
) -> None:
    (path,) = workspaces("locked")
    cai("up", str(path))
    name = _name(cai, path)
    password = subprocess.run(
        [
            "ssh",
            "-F",
            _ssh_config(cai_env),
            "-o",
            "BatchMode=yes",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            f"containai-{name}",
            "true",
        ],
        env=cai_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert password.returncode == 255
    assert "Permission denied (publickey)" in password.stderr

    known = Path(cai_env["XDG_CONFIG_HOME"]) / "containai" / "known_hosts"
    text = known.read_text()
    tampered = []
    for line in text.splitlines():
        host, kind, key = line.split()[:3]
        body = key[:-8] + ("A" if key[-8] != "A" else "B") + key[-7:]
        tampered.append(f"{host} {kind} {body}")
    known.write_text("\n".join(tampered) + "\n")
    strict = subprocess.run(
        ["ssh", "-F", _ssh_config(cai_env), "-o", "BatchMode=yes", f"containai-{name}", "true"],
        env=cai_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert strict.returncode == 255
    known.write_text(text)


def test_exec_exits_with_the_remote_code_and_streams_output(cai, cai_env, workspaces) -> None:
    (path,) = workspaces("execy")
    result = cai("exec", str(path), "--", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert result.returncode == 7
    assert result.stdout.strip().endswith("out")
    assert "err" in result.stderr


def test_ten_workspaces_get_ten_ports_and_ten_execs_succeed(cai, cai_env, workspaces) -> None:
    paths = workspaces(*[f"w{i}" for i in range(10)])
    cai("up", *map(str, paths), timeout=600)
    rows = [r for r in json.loads(cai("ps", "--json").stdout) if r["workspace"] in map(str, paths)]
    assert len({r["ssh_port"] for r in rows}) == 10
    results: list[int] = []

    def run(p: Path) -> None:
        results.append(cai("exec", str(p), "--", "true", check=False).returncode)

    threads = [threading.Thread(target=run, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert results == [0] * 10
    known = (Path(cai_env["XDG_CONFIG_HOME"]) / "containai" / "known_hosts").read_text()
    for r in rows:
        assert (
            sum(
                1 for line in known.splitlines() if line.startswith(f"[127.0.0.1]:{r['ssh_port']} ")
            )
            == 1
        )
        assert (
            sum(1 for line in known.splitlines() if line.startswith(f"containai-{r['name']} ")) == 1
        )
    cai("rm", *map(str, paths))


def test_two_concurrent_up_processes_never_share_a_port_or_duplicate(
    cai, cai_env, workspaces
) -> None:
    a = workspaces(*[f"a{i}" for i in range(3)])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "containai", "up", *map(str, a)],
            env=cai_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    rows = [r for r in json.loads(cai("ps", "--json").stdout) if r["workspace"] in map(str, a)]
    assert len(rows) == 3
    assert len({r["ssh_port"] for r in rows}) == 3


def test_attached_appears_while_a_session_is_open(cai, cai_env, workspaces) -> None:
    (path,) = workspaces("attach")
    cai("up", str(path))
    start = time.time()
    cai("exec", str(path), "--", "sleep", "1")
    replay = [
        json.loads(line)
        for line in cai(
            "events", "--since", str(start - 1), "--no-follow", "--json"
        ).stdout.splitlines()
    ]
    states = [r["to_state"] for r in replay if r["workspace"] == str(path)]
    assert states[-2:] == ["attached", "sshd-ready"]


def test_ps_in_another_process_shows_attached_during_exec(cai, cai_env, workspaces) -> None:
    (path,) = workspaces("busy")
    cai("up", str(path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "containai", "exec", str(path), "--", "sleep", "4"],
        env=cai_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        rows = json.loads(cai("ps", "--json").stdout)
        assert next(r for r in rows if r["workspace"] == str(path))["state"] == "attached"
    finally:
        assert proc.wait(30) == 0
    rows = json.loads(cai("ps", "--json").stdout)
    assert next(r for r in rows if r["workspace"] == str(path))["state"] == "sshd-ready"
