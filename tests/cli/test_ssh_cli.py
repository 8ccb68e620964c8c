"""``cai ssh cleanup`` against the in-memory engine (``fake_engine`` from tests/cli/conftest.py)."""

from __future__ import annotations

import base64
import json

import pytest

from containai._defaults import LABEL_MANAGED
from containai.cli import main
from containai.orchestrator import _sshfiles as sf
from containai.orchestrator._ports import CreateSpec
from containai.orchestrator.testing import FakeDocker
from containai.orchestrator.testing._fake_docker import FakeContainer


def _key(seed: int) -> str:
    blob = (11).to_bytes(4, "big") + b"ssh-ed25519" + (32).to_bytes(4, "big")
    return "ssh-ed25519 " + base64.b64encode(blob + seed.to_bytes(32, "big")).decode()


def _workspace(docker: FakeDocker, name: str, port: int) -> None:
    spec = CreateSpec(name=name, image="img", hostname=name, labels={LABEL_MANAGED: "true"})
    docker.containers[name] = FakeContainer(id=name, name=name, spec=spec, status="exited")
    sf.write_host_config(name, port, key_path="/k", forward_agent=False)
    sf.pin_host_keys(f"containai-{name}", port, [_key(port)])


@pytest.fixture
def files(fake_engine: FakeDocker) -> FakeDocker:
    _workspace(fake_engine, "live", 2300)
    _workspace(fake_engine, "gone", 2301)
    del fake_engine.containers["gone"]
    return fake_engine


def test_ssh_cleanup_dry_run_lists_and_keeps(
    files: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ssh", "cleanup", "--dry-run"]) == 0
    assert capsys.readouterr().out == "Would remove SSH config and host keys of containai-gone\n"
    assert [c.name for c in sf.list_host_configs()] == ["gone", "live"]


def test_ssh_cleanup_removes_entries_of_missing_containers(
    files: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ssh", "cleanup", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dry_run": False, "removed": ["gone"]}
    assert [c.name for c in sf.list_host_configs()] == ["live"]
    assert sf.pinned_keys("containai-gone") == []
    assert sf.pinned_keys("[127.0.0.1]:2301") == []
    assert sf.pinned_keys("containai-live") == [_key(2300)]
    assert main(["ssh", "cleanup"]) == 0
    assert capsys.readouterr().out == "Nothing to clean up.\n"


def test_ssh_cleanup_aborts_when_the_engine_is_down(
    files: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    files.down = True
    assert main(["ssh", "cleanup"]) == 3
    assert capsys.readouterr().err.startswith("DockerUnavailable: ")
    assert [c.name for c in sf.list_host_configs()] == ["gone", "live"]
