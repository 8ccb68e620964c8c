"""`cai config` in-process: exit codes, output, and the files it edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from containai.cli import main


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def _user_file(home: Path) -> Path:
    return home / ".config" / "containai" / "config.toml"


def _list(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, object]]:
    assert main(["config", "list", "--json", *args]) == 0
    return {row["key"]: row for row in json.loads(capsys.readouterr().out)}


def test_config_list_json_shows_values_and_sources(ws, home, capsys) -> None:
    rows = _list(capsys)
    assert rows["agent.default"] == {"key": "agent.default", "value": "claude", "source": "default"}
    assert rows["ssh.port_range"]["value"] == "2300-2500"
    assert rows["resources.memory_limit"]["source"] == "default"


def test_config_list_table_has_key_value_source(ws, capsys) -> None:
    assert main(["config", "list"]) == 0
    out = capsys.readouterr().out
    assert out.split()[:3] == ["KEY", "VALUE", "SOURCE"]
    assert "agent.data_volume" in out
    assert "containai-data" in out


def test_config_list_reports_env_and_workspace_sources(ws, home, capsys, monkeypatch) -> None:
    (ws / ".containai").mkdir()
    (ws / ".containai" / "config.toml").write_text('[agent]\ndata_volume = "proj"\n')
    monkeypatch.setenv("CONTAINAI_AGENT", "codex")
    rows = _list(capsys)
    assert rows["agent.default"]["source"] == "env:CONTAINAI_AGENT"
    assert rows["agent.data_volume"]["value"] == "proj"
    assert rows["agent.data_volume"]["source"] == f"workspace:{ws}/.containai/config.toml"


def test_config_set_then_get_uses_the_user_file(ws, home, capsys) -> None:
    assert main(["config", "set", "resources.memory_limit", "4g"]) == 0
    assert str(_user_file(home)) in capsys.readouterr().out
    assert main(["config", "get", "resources.memory_limit"]) == 0
    assert capsys.readouterr().out == "4g\n"
    assert main(["config", "get", "resources.memory_limit", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["source"] == f"user:{_user_file(home)}"


def test_config_set_workspace_edits_the_workspace_file(tmp_path, home, capsys) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert main(["config", "set", "agent.data_volume", "vol-x", "--workspace", str(other)]) == 0
    assert (other / ".containai" / "config.toml").read_text() == '[agent]\ndata_volume = "vol-x"\n'
    assert not _user_file(home).exists()
    capsys.readouterr()
    rows = _list(capsys, "--workspace", str(other))
    assert rows["agent.data_volume"]["value"] == "vol-x"


def test_config_set_keeps_comments(ws, home, capsys) -> None:
    user = _user_file(home)
    user.parent.mkdir(parents=True)
    user.write_text("# mine\n[ssh]\nforward_agent = false  # off for now\n")
    assert main(["config", "set", "ssh.forward_agent", "true"]) == 0
    assert user.read_text() == "# mine\n[ssh]\nforward_agent = true  # off for now\n"


def test_config_set_invalid_value_exits_2_and_leaves_the_file(ws, home, capsys) -> None:
    assert main(["config", "set", "agent.default", "codex"]) == 0
    before = _user_file(home).read_bytes()
    capsys.readouterr()
    assert main(["config", "set", "resources.cpu_limit", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ConfigError: ")
    assert "'lots' is not a number" in err
    assert _user_file(home).read_bytes() == before


def test_config_get_unknown_key_suggests_one(ws, capsys) -> None:
    assert main(["config", "get", "agent.defualt"]) == 2
    assert "did you mean 'agent.default'?" in capsys.readouterr().err


def test_config_unset_removes_the_key(ws, home, capsys) -> None:
    main(["config", "set", "agent.default", "codex"])
    assert main(["config", "unset", "agent.default"]) == 0
    assert "removed agent.default" in capsys.readouterr().out
    assert _list(capsys)["agent.default"]["source"] == "default"
    assert main(["config", "unset", "agent.default"]) == 0
    assert "was not set" in capsys.readouterr().out


def test_config_workspace_and_user_together_is_a_usage_error(ws, capsys) -> None:
    assert main(["config", "set", "agent.default", "x", "--workspace", str(ws), "--user"]) == 2
    assert capsys.readouterr().err.startswith("UsageError: ")


def test_config_bad_toml_names_line_and_column(ws, home, capsys) -> None:
    user = _user_file(home)
    user.parent.mkdir(parents=True)
    user.write_text("[agent]\ndefault = \n")
    assert main(["config", "list"]) == 2
    err = capsys.readouterr().err
    assert str(user) in err
    assert "line 2, column 11" in err


def test_config_list_with_explicit_config(ws, tmp_path, capsys) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text("[engine]\nruntime = 'runc'\n")
    rows = _list(capsys, "--config", str(extra))
    assert rows["engine.runtime"] == {
        "key": "engine.runtime",
        "value": "runc",
        "source": f"config:{extra}",
    }
    assert main(["config", "list", "--config", str(tmp_path / "missing.toml")]) == 2
