"""resolve_workspace: the spec the orchestrator reads."""

from __future__ import annotations

from pathlib import Path

import pytest

import containai.model
from containai.fsm._errors import ConfigError
from containai.model import Overrides, WorkspaceSpec, resolve_workspace

GIB = 1 << 30


def test_resolve_workspace_fills_every_field(tmp_path: Path) -> None:
    ws = tmp_path / "My_Project"
    ws.mkdir()
    spec = resolve_workspace(ws, Overrides(memory="4g", cpus=1.5), environ={})
    assert spec.path == str(ws)
    assert spec.name == "myproject-nogit"
    assert spec.hostname == "myproject-nogit"
    assert spec.data_volume == "containai-data"
    assert spec.agent == "claude"
    assert spec.memory == 4 * GIB
    assert spec.nano_cpus == 1_500_000_000
    assert spec.port_range == (2300, 2500)
    assert spec.forward_agent is False
    assert spec.env == {}
    assert spec.engine_socket == "unix:///var/run/containai-docker.sock"
    assert spec.runtime == "auto"
    assert spec.inner_docker is False
    assert spec.config.resources.memory_limit == "4g"


def test_resolve_workspace_defaults_to_half_the_host(tmp_path: Path, monkeypatch) -> None:
    import containai.model._workspace as workspace

    monkeypatch.setattr(workspace, "default_memory", lambda: 8 * GIB)
    monkeypatch.setattr(workspace, "default_cpus", lambda: 3)
    spec = resolve_workspace(tmp_path, environ={})
    assert spec.memory == 8 * GIB
    assert spec.nano_cpus == 3_000_000_000


def test_resolve_workspace_resolves_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert resolve_workspace(link, environ={}).path == str(real)


def test_resolve_workspace_relative_path_is_made_absolute(tmp_path, monkeypatch) -> None:
    (tmp_path / "rel").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_workspace("rel", environ={}).path == str(tmp_path / "rel")


def test_resolve_workspace_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"workspace .*nowhere does not exist"):
        resolve_workspace(tmp_path / "nowhere")


def test_resolve_workspace_file_is_not_a_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        resolve_workspace(f)


def test_resolve_workspace_env_imports_host_values(tmp_path: Path) -> None:
    conf = tmp_path / ".containai" / "config.toml"
    conf.parent.mkdir()
    conf.write_text('[env]\nEDITOR = "vim"\nimport = ["TOKEN", "MISSING", "EDITOR"]\n')
    spec = resolve_workspace(tmp_path, environ={"TOKEN": "t0k", "EDITOR": "emacs"})
    assert spec.env == {"TOKEN": "t0k", "EDITOR": "vim"}


def test_resolve_workspace_reads_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONTAINAI_DATA_VOLUME", "from-env")
    monkeypatch.setenv("CONTAINAI_SSH_PORT_RANGE", "4000-4001")
    spec = resolve_workspace(tmp_path)
    assert spec.data_volume == "from-env"
    assert spec.port_range == (4000, 4001)


def test_resolve_workspace_in_a_git_repo_uses_the_branch(repo: Path, git) -> None:
    git(repo, "checkout", "-q", "-b", "feat/ui/button")
    spec = resolve_workspace(repo, environ={})
    assert spec.name == "myrepo-button"


def test_workspace_spec_is_frozen(tmp_path: Path) -> None:
    spec = resolve_workspace(tmp_path, environ={})
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    assert isinstance(spec, WorkspaceSpec)


def test_model_exports_are_pinned() -> None:
    """The orchestrator and CLI import these; changing the list is an interface change."""
    assert containai.model.__all__ == [
        "CONFIG_ENV_VAR",
        "ENV_VARS",
        "KEYS",
        "AgentSection",
        "Config",
        "EngineSection",
        "ImportSection",
        "Overrides",
        "ResolvedConfig",
        "ResourcesSection",
        "SSHSection",
        "Setting",
        "WorkspaceSpec",
        "check_key",
        "compose_name",
        "config_file_for",
        "container_name",
        "default_cpus",
        "default_memory",
        "find_workspace_config",
        "format_cpus",
        "format_size",
        "git_branch",
        "load_config",
        "nano_cpus",
        "owner",
        "parse_cpus",
        "parse_memory",
        "parse_port_range",
        "parse_size",
        "reset_volume_name",
        "resolve_workspace",
        "sanitize_hostname",
        "set_value",
        "suffixed",
        "unset_value",
        "user_config_path",
        "validate_volume",
        "workspace_labels",
        "workspace_path",
    ]
    for name in containai.model.__all__:
        assert getattr(containai.model, name) is not None
