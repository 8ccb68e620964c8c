"""``cai import`` / ``cai export`` in-process, against the in-memory volume fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from containai.cli import main
from containai.orchestrator.testing._fake_volumes import FakeVolumes


@pytest.fixture
def volumes(monkeypatch: pytest.MonkeyPatch) -> FakeVolumes:
    fake = FakeVolumes()
    engines: list[str] = []

    @asynccontextmanager
    async def opened(host: str, **_: object) -> AsyncIterator[FakeVolumes]:
        engines.append(host)
        yield fake

    import containai.orchestrator.adapters._volumes as adapter

    monkeypatch.setattr(adapter, "open_volumes", opened)
    fake.engines = engines  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def host_files(isolated_home: Path) -> Path:
    (isolated_home / ".claude").mkdir()
    (isolated_home / ".claude/CLAUDE.md").write_text("# rules\n")
    (isolated_home / ".gitconfig").write_text("[user]\n\tname = A\n")
    (isolated_home / ".config/gh").mkdir(parents=True)
    (isolated_home / ".config/gh/hosts.yml").write_text("token: t\n")
    return isolated_home


def test_import_dry_run_json_writes_nothing(
    volumes: FakeVolumes, host_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True
    assert report["volume"] == "containai-data"
    added = {c["path"] for c in report["changes"] if c["action"] == "added"}
    assert {"claude/CLAUDE.md", "config/git/gitconfig", "config/gh/hosts.yml"} <= added
    assert volumes.volumes == {}


def test_import_then_export_then_restore(
    volumes: FakeVolumes, host_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "--data-volume", "cai-a"]) == 0
    out = capsys.readouterr().out
    assert "added" in out
    assert "claude/CLAUDE.md" in out
    assert "→ volume cai-a (created)" in out

    target = tmp_path / "backup.tar.gz"
    assert main(["export", "--data-volume", "cai-a", "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)

    assert main(["import", "--data-volume", "cai-b", "--from", str(target)]) == 0
    assert volumes.volumes["cai-b"] == volumes.volumes["cai-a"]


def test_no_secrets_flag(volumes: FakeVolumes, host_files: Path) -> None:
    assert main(["import", "--no-secrets"]) == 0
    nodes = volumes.volumes["containai-data"]
    assert "config/gh/hosts.yml" not in nodes
    assert "claude/CLAUDE.md" in nodes


def test_from_directory(volumes: FakeVolumes, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    (other / ".codex").mkdir(parents=True)
    (other / ".codex/config.toml").write_text('model = "o3"\n')
    assert main(["import", "--from", str(other)]) == 0
    assert volumes.volumes["containai-data"]["codex/config.toml"].data == b'model = "o3"\n'


def test_data_volume_and_engine_come_from_config(
    volumes: FakeVolumes, host_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = host_files / ".config/containai/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[agent]\ndata_volume = "from-config"\n[engine]\nsocket = "unix:///tmp/other.sock"\n'
    )
    assert main(["import", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["volume"] == "from-config"
    assert volumes.engines == ["unix:///tmp/other.sock"]  # type: ignore[attr-defined]


def test_workspace_config_decides_the_volume(
    volumes: FakeVolumes, host_files: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "src" / "proj"
    (ws / ".containai").mkdir(parents=True)
    (ws / ".containai/config.toml").write_text('[agent]\ndata_volume = "proj-data"\n')
    assert main(["import", str(ws)]) == 0
    assert set(volumes.volumes) == {"proj-data"}


def test_missing_source_is_a_config_error(
    volumes: FakeVolumes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "--from", str(tmp_path / "nope")]) == 2
    assert "ConfigError" in capsys.readouterr().err


def test_no_secrets_with_an_archive_is_a_usage_error(
    volumes: FakeVolumes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"")
    assert main(["import", "--from", str(archive), "--no-secrets"]) == 2
    assert "UsageError" in capsys.readouterr().err


def test_export_of_a_missing_volume(
    volumes: FakeVolumes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--data-volume", "nope", "-o", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
