"""Config files, validation messages, and the per-key precedence with sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from containai.fsm._errors import ConfigError
from containai.model import KEYS, Config, Overrides, check_key, find_workspace_config, load_config

GIB = 1 << 30


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def user_file(isolated_home: Path) -> Path:
    return isolated_home / ".config" / "containai" / "config.toml"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


class TestPrecedence:
    LEVELS = ("default", "user", "workspace", "config", "env", "flag")

    @pytest.fixture
    def layered(self, tmp_path: Path, ws: Path, user_file: Path):
        """Set resources.memory_limit at every level up to ``top``; return a loader."""

        def load(top: str):
            upto = self.LEVELS[: self.LEVELS.index(top) + 1]
            if "user" in upto:
                write(user_file, '[resources]\nmemory_limit = "2g"\n')
            if "workspace" in upto:
                write(ws / ".containai" / "config.toml", '[resources]\nmemory_limit = "3g"\n')
            explicit = None
            if "config" in upto:
                explicit = str(write(tmp_path / "extra.toml", '[resources]\nmemory_limit = "4g"\n'))
            environ = {"CONTAINAI_MEMORY": "5g"} if "env" in upto else {}
            memory = "6g" if "flag" in upto else None
            return load_config(ws, Overrides(memory=memory, config_path=explicit), environ)

        return load

    @pytest.mark.parametrize(
        ("top", "value", "source"),
        [
            ("user", "2g", "user:{user}"),
            ("workspace", "3g", "workspace:{ws}/.containai/config.toml"),
            ("config", "4g", "config:{tmp}/extra.toml"),
            ("env", "5g", "env:CONTAINAI_MEMORY"),
            ("flag", "6g", "flag:--memory"),
        ],
    )
    def test_precedence_highest_level_wins_and_is_the_source(
        self, layered, top, value, source, tmp_path, ws, user_file
    ) -> None:
        resolved = layered(top)
        setting = resolved.get("resources.memory_limit")
        assert setting.value == value
        assert setting.source == source.format(user=user_file, ws=ws, tmp=tmp_path)
        assert resolved.config.resources.memory_limit == value

    def test_precedence_default_when_nothing_is_set(self, layered) -> None:
        resolved = layered("default")
        setting = resolved.get("resources.memory_limit")
        assert setting.source == "default"
        assert setting.value.endswith("g")
        assert resolved.get("agent.default").value == "claude"
        assert resolved.get("agent.data_volume").value == "containai-data"
        assert resolved.get("ssh.port_range").value == "2300-2500"
        assert resolved.get("engine.socket").value == "unix:///var/run/containai-docker.sock"
        assert resolved.files == ()

    def test_precedence_merges_per_key_not_per_file(self, ws: Path, user_file: Path) -> None:
        write(user_file, '[agent]\ndefault = "codex"\n[resources]\ncpu_limit = 3\n')
        write(ws / ".containai" / "config.toml", "[resources]\ncpu_limit = 1.5\n")
        resolved = load_config(ws, environ={})
        assert resolved.get("agent.default").value == "codex"
        assert resolved.source("agent.default") == f"user:{user_file}"
        assert resolved.config.resources.cpu_limit == 1.5
        assert resolved.source("resources.cpu_limit").startswith("workspace:")
        assert resolved.files == (str(user_file), str(ws / ".containai" / "config.toml"))

    def test_precedence_env_tables_merge_per_variable(self, ws: Path, user_file: Path) -> None:
        write(user_file, '[env]\nA = "user"\nB = "user"\n')
        write(ws / ".containai" / "config.toml", '[env]\nB = "ws"\nimport = ["HOSTVAR"]\n')
        resolved = load_config(ws, Overrides(env={"C": "flag"}), environ={})
        assert resolved.config.env_vars({"HOSTVAR": "h"}) == {
            "A": "user",
            "B": "ws",
            "C": "flag",
            "HOSTVAR": "h",
        }
        assert resolved.source("env.C") == "flag:--env"

    @pytest.mark.parametrize(
        ("var", "key", "text", "expected"),
        [
            ("CONTAINAI_AGENT", "agent.default", "gemini", "gemini"),
            ("CONTAINAI_DATA_VOLUME", "agent.data_volume", "my-vol", "my-vol"),
            ("CONTAINAI_CPUS", "resources.cpu_limit", "1.5", 1.5),
            ("CONTAINAI_SSH_PORT_RANGE", "ssh.port_range", "3000-3010", "3000-3010"),
            ("CONTAINAI_SSH_FORWARD_AGENT", "ssh.forward_agent", "yes", True),
            ("CONTAINAI_ENGINE_SOCKET", "engine.socket", "tcp://h:2376", "tcp://h:2376"),
            ("CONTAINAI_RUNTIME", "engine.runtime", "runc", "runc"),
            ("CONTAINAI_INNER_DOCKER", "engine.inner_docker", "1", True),
        ],
    )
    def test_precedence_each_env_var_sets_its_key(self, ws, var, key, text, expected) -> None:
        resolved = load_config(ws, environ={var: text})
        assert resolved.get(key).value == expected
        assert resolved.source(key) == f"env:{var}"

    def test_precedence_flag_beats_env_for_every_flag(self, ws: Path) -> None:
        environ = {
            "CONTAINAI_AGENT": "gemini",
            "CONTAINAI_DATA_VOLUME": "env-vol",
            "CONTAINAI_CPUS": "3",
        }
        resolved = load_config(
            ws, Overrides(agent="codex", data_volume="flag-vol", cpus=2), environ
        )
        cfg = resolved.config
        assert (cfg.agent.default, cfg.agent.data_volume, cfg.resources.cpu_limit) == (
            "codex",
            "flag-vol",
            2.0,
        )
        assert resolved.source("agent.data_volume") == "flag:--data-volume"

    def test_precedence_empty_env_var_is_ignored(self, ws: Path) -> None:
        assert load_config(ws, environ={"CONTAINAI_AGENT": ""}).source("agent.default") == "default"

    def test_containai_config_env_var_names_an_explicit_file(self, tmp_path, ws) -> None:
        extra = write(tmp_path / "e.toml", '[agent]\ndefault = "copilot"\n')
        resolved = load_config(ws, environ={"CONTAINAI_CONFIG": str(extra)})
        assert resolved.get("agent.default").value == "copilot"
        assert resolved.source("agent.default") == f"config:{extra}"


class TestErrors:
    def test_bad_toml_names_file_line_and_column(self, ws: Path, user_file: Path) -> None:
        write(user_file, '[agent]\ndefault = "claude"\ndata_volume =\n')
        with pytest.raises(ConfigError) as info:
            load_config(ws, environ={})
        message = str(info.value)
        assert str(user_file) in message
        assert "line 3" in message
        assert "column 14" in message

    def test_unknown_key_gets_a_did_you_mean(self, ws: Path) -> None:
        path = write(ws / ".containai" / "config.toml", "[resources]\nmemory = '4g'\n")
        with pytest.raises(ConfigError) as info:
            load_config(ws, environ={})
        message = str(info.value)
        assert str(path) in message
        assert "'resources.memory'" in message
        assert "did you mean 'resources.memory_limit'?" in message

    def test_unknown_section_gets_a_did_you_mean(self, ws: Path, user_file: Path) -> None:
        write(user_file, "[agnet]\ndefault = 'x'\n")
        with pytest.raises(ConfigError, match=r"unknown section \[agnet\]; did you mean 'agent'"):
            load_config(ws, environ={})

    def test_top_level_value_is_not_a_section(self, ws: Path, user_file: Path) -> None:
        write(user_file, "agent = 'claude'\n")
        with pytest.raises(ConfigError, match=r"agent must be a table"):
            load_config(ws, environ={})

    def test_wrong_type_names_file_and_key(self, ws: Path, user_file: Path) -> None:
        write(user_file, "[ssh]\nforward_agent = 'sure'\n")
        with pytest.raises(ConfigError) as info:
            load_config(ws, environ={})
        assert str(user_file) in str(info.value)
        assert "ssh.forward_agent" in str(info.value)

    @pytest.mark.parametrize(
        ("toml", "fragment"),
        [
            ("[resources]\nmemory_limit = '4x'", "resources.memory_limit"),
            ("[resources]\ncpu_limit = 0", "resources.cpu_limit"),
            ("[agent]\ndata_volume = 'bad name'", "invalid data volume name 'bad name'"),
            ("[agent]\ndata_volume = '-x'", "invalid data volume name"),
            ("[ssh]\nport_range = '2500-2300'", "invalid SSH port range"),
            ("[ssh]\nport_range = '80-90'", "1024-65535"),
            ("[engine]\nruntime = 'kata'", "engine.runtime: 'kata' is not one of"),
            ("[engine]\nsocket = '/var/run/docker.sock'", "engine.socket"),
            ("[env]\n'1BAD' = 'x'", "env.1BAD"),
            ("[env]\nimport = 'HOME'", "env.import"),
            ("[env]\nN = 1", "env.N"),
            ("[import]\nadditional_paths = ['relative/x']", "import.additional_paths"),
            ("[import]\nadditional_paths = ['~/../etc']", "'..'"),
        ],
    )
    def test_invalid_values_are_config_errors(self, ws, user_file, toml, fragment) -> None:
        write(user_file, toml + "\n")
        with pytest.raises(ConfigError) as info:
            load_config(ws, environ={})
        assert fragment in str(info.value)
        assert str(user_file) in str(info.value)

    def test_invalid_env_var_names_the_variable(self, ws: Path) -> None:
        with pytest.raises(ConfigError, match=r"CONTAINAI_CPUS.*'many' is not a number"):
            load_config(ws, environ={"CONTAINAI_CPUS": "many"})
        with pytest.raises(ConfigError, match=r"CONTAINAI_MEMORY.*'4x'"):
            load_config(ws, environ={"CONTAINAI_MEMORY": "4x"})

    def test_invalid_flag_names_the_flag(self, ws: Path) -> None:
        with pytest.raises(ConfigError, match=r"^--memory: .*'lots'"):
            load_config(ws, Overrides(memory="lots"), environ={})
        with pytest.raises(ConfigError, match=r"^--data-volume: .*'a b'"):
            load_config(ws, Overrides(data_volume="a b"), environ={})

    def test_missing_explicit_config_is_an_error(self, ws: Path, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"nope\.toml.*does not exist"):
            load_config(ws, Overrides(config_path=str(tmp_path / "nope.toml")), environ={})

    def test_missing_discovered_files_are_fine(self, ws: Path) -> None:
        assert load_config(ws, environ={}).files == ()


class TestWorkspaceFile:
    def test_nearest_ancestor_is_used(self, tmp_path: Path) -> None:
        top = write(tmp_path / "a" / ".containai" / "config.toml", "")
        near = write(tmp_path / "a" / "b" / ".containai" / "config.toml", "")
        deep = tmp_path / "a" / "b" / "c"
        deep.mkdir()
        assert find_workspace_config(deep) == near
        assert find_workspace_config(tmp_path / "a") == top

    def test_search_stops_at_the_git_root(self, tmp_path: Path, repo: Path) -> None:
        write(repo.parent / ".containai" / "config.toml", "")
        sub = repo / "pkg"
        sub.mkdir()
        assert find_workspace_config(sub) is None
        mine = write(repo / ".containai" / "config.toml", "")
        assert find_workspace_config(sub) == mine

    def test_a_git_file_also_marks_the_root(self, tmp_path: Path) -> None:
        write(tmp_path / ".containai" / "config.toml", "")
        wt = tmp_path / "worktree"
        write(wt / ".git", "gitdir: /elsewhere\n")
        assert find_workspace_config(wt) is None


def test_check_key_suggests_the_closest_key() -> None:
    assert check_key("ssh.port_range") == "ssh.port_range"
    assert check_key("env.MY_VAR") == "env.MY_VAR"
    with pytest.raises(ConfigError, match=r"did you mean 'ssh\.forward_agent'"):
        check_key("ssh.forward_agnet")


def test_keys_cover_every_section_field() -> None:
    assert KEYS == (
        "agent.default",
        "agent.data_volume",
        "resources.memory_limit",
        "resources.cpu_limit",
        "ssh.port_range",
        "ssh.forward_agent",
        "import.additional_paths",
        "import.excludes",
        "import.secrets",
        "engine.socket",
        "engine.runtime",
        "engine.inner_docker",
        "env.import",
    )


def test_default_config_is_valid() -> None:
    cfg = Config()
    assert cfg.import_.secrets is True
    assert cfg.engine.runtime == "auto"
