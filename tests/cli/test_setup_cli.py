"""``cai setup`` in-process: the dry run prints a plan, and a real run twice is idempotent."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from containai._defaults import ENGINE_CONFIG, ENGINE_SOCKET
from containai.cli import main
from containai.orchestrator._runtime import REDUCED_ISOLATION_SENTENCE

pytestmark = pytest.mark.docker


def _engine_answers() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(ENGINE_SOCKET)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"200 OK" in sock.recv(256)
        except OSError:
            return False


def require_engine() -> None:
    """Skip outside CI when no engine answers or we are not root; in CI that is a failure."""
    problem = None
    if os.geteuid() != 0:
        problem = "cai setup needs root"
    elif not _engine_answers():
        problem = f"the cai engine does not answer at {ENGINE_SOCKET} (run `sudo cai setup`)"
    if problem is None:
        return
    if os.environ.get("CI") or os.environ.get("CAI_REQUIRE_ENGINE"):
        pytest.fail(problem)
    pytest.skip(problem)


def test_setup_dry_run_prints_the_plan_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], isolated_home: Path
) -> None:
    require_engine()
    before = ENGINE_CONFIG.read_text()
    assert main(["setup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cai engine: unix:///var/run/containai-docker.sock" in out
    # HOME is a temp dir: the per-user docker CLI context is the one thing missing there
    assert "plan (dry run, nothing changed):" in out
    assert "docker CLI context 'containai'" in out
    assert not (isolated_home / ".docker" / "contexts").exists()
    assert ENGINE_CONFIG.read_text() == before


def test_setup_twice_second_run_has_nothing_to_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_engine()
    assert main(["setup"]) == 0
    first = capsys.readouterr().out
    assert main(["setup"]) == 0
    second = capsys.readouterr().out
    assert "nothing to change" in second, first + second
    if not Path("/usr/bin/sysbox-runc").exists():
        assert "default runtime runc" in second
        assert REDUCED_ISOLATION_SENTENCE in second
    assert main(["setup", "--dry-run"]) == 0
    assert "nothing to change" in capsys.readouterr().out
