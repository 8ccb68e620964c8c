"""`cai config set/unset` on files: comments kept, values validated first, atomic writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from containai.fsm._errors import ConfigError
from containai.model import config_file_for, load_config, set_value, unset_value, user_config_path

COMMENTED = """\
# My containai settings.
[agent]
default = "codex"  # the one I use

# Limits for my laptop.
[resources]
cpu_limit = 2
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text(COMMENTED)
    return path


class TestSet:
    def test_set_keeps_comments_and_layout(self, cfg: Path) -> None:
        set_value(cfg, "resources.memory_limit", "4g")
        text = cfg.read_text()
        assert text.startswith(COMMENTED.rstrip("\n"))
        assert "# the one I use" in text
        assert "# Limits for my laptop." in text
        assert 'memory_limit = "4g"' in text

    def test_set_replaces_a_value_in_place(self, cfg: Path) -> None:
        set_value(cfg, "agent.default", "gemini")
        assert cfg.read_text() == COMMENTED.replace('"codex"', '"gemini"')

    def test_set_adds_a_missing_section(self, cfg: Path) -> None:
        set_value(cfg, "ssh.forward_agent", "true")
        assert cfg.read_text().endswith("[ssh]\nforward_agent = true\n")

    @pytest.mark.parametrize(
        ("key", "text", "expected"),
        [
            ("resources.cpu_limit", "1.5", 1.5),
            ("resources.cpu_limit", "3", 3),
            ("ssh.forward_agent", "yes", True),
            ("engine.inner_docker", "off", False),
            ("import.excludes", "a, b", ["a", "b"]),
            ("import.excludes", '["x", "y"]', ["x", "y"]),
            ("env.import", "GH_TOKEN,HOME", ["GH_TOKEN", "HOME"]),
            ("env.EDITOR", "vim", "vim"),
            ("agent.data_volume", "my-data", "my-data"),
        ],
    )
    def test_set_converts_to_the_keys_type(self, cfg, key, text, expected) -> None:
        assert set_value(cfg, key, text) == expected
        section, _, name = key.partition(".")
        import tomllib

        assert tomllib.loads(cfg.read_text())[section][name] == expected

    @pytest.mark.parametrize(
        ("key", "text", "fragment"),
        [
            ("resources.memory_limit", "lots", "'lots'"),
            ("resources.cpu_limit", "two", "not a number"),
            ("ssh.forward_agent", "maybe", "not a boolean"),
            ("ssh.port_range", "9-1", "invalid SSH port range"),
            ("agent.data_volume", "has space", "invalid data volume name"),
            ("engine.runtime", "kata", "is not one of"),
            ("agent.defualt", "x", "did you mean 'agent.default'"),
            ("env.1X", "x", "unknown key"),
        ],
    )
    def test_set_invalid_value_leaves_the_file_untouched(self, cfg, key, text, fragment) -> None:
        before = cfg.read_bytes()
        with pytest.raises(ConfigError, match=fragment):
            set_value(cfg, key, text)
        assert cfg.read_bytes() == before
        assert sorted(p.name for p in cfg.parent.iterdir()) == ["config.toml"]

    def test_set_refuses_to_edit_a_broken_file(self, cfg: Path) -> None:
        cfg.write_text("[agent\n")
        with pytest.raises(ConfigError, match="line 1"):
            set_value(cfg, "agent.default", "x")
        assert cfg.read_text() == "[agent\n"

    def test_set_creates_the_file_0600_in_a_0700_directory(self, tmp_path: Path) -> None:
        path = tmp_path / "new" / "dir" / "config.toml"
        set_value(path, "agent.default", "codex")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_text() == '[agent]\ndefault = "codex"\n'

    def test_set_rewrites_with_mode_0600(self, cfg: Path) -> None:
        cfg.chmod(0o644)
        set_value(cfg, "agent.default", "x")
        assert stat.S_IMODE(cfg.stat().st_mode) == 0o600


class TestUnset:
    def test_unset_removes_the_key_and_keeps_comments(self, cfg: Path) -> None:
        assert unset_value(cfg, "agent.default") is True
        text = cfg.read_text()
        assert "default" not in text
        assert "# My containai settings." in text
        assert "cpu_limit = 2" in text

    def test_unset_drops_an_emptied_section(self, cfg: Path) -> None:
        unset_value(cfg, "resources.cpu_limit")
        assert "[resources]" not in cfg.read_text()

    def test_unset_of_a_missing_key_changes_nothing(self, cfg: Path) -> None:
        assert unset_value(cfg, "ssh.port_range") is False
        assert cfg.read_text() == COMMENTED

    def test_unset_without_a_file_is_a_no_op(self, tmp_path: Path) -> None:
        assert unset_value(tmp_path / "none.toml", "agent.default") is False
        assert not (tmp_path / "none.toml").exists()

    def test_unset_unknown_key_is_an_error(self, cfg: Path) -> None:
        with pytest.raises(ConfigError, match="unknown key"):
            unset_value(cfg, "agent.nope")


class TestTargetFile:
    def test_user_file_by_default(self) -> None:
        assert config_file_for(None) == user_config_path()

    def test_workspace_file_in_the_workspace(self, tmp_path: Path) -> None:
        assert config_file_for(tmp_path) == tmp_path / ".containai" / "config.toml"

    def test_workspace_edits_the_file_that_applies(self, tmp_path: Path) -> None:
        existing = tmp_path / ".containai" / "config.toml"
        existing.parent.mkdir()
        existing.write_text("")
        sub = tmp_path / "sub"
        sub.mkdir()
        assert config_file_for(sub) == existing

    def test_set_then_load_round_trips(self, tmp_path: Path) -> None:
        set_value(config_file_for(tmp_path), "resources.memory_limit", "3g")
        resolved = load_config(tmp_path, environ={})
        assert resolved.get("resources.memory_limit").value == "3g"
        assert resolved.source("resources.memory_limit").startswith("workspace:")
