"""Resolve a workspace directory into everything needed to create its container.

:func:`load_config` merges the configuration sources per key (see ``_config``);
:func:`resolve_workspace` adds the name, hostname and resource limits and returns a frozen
:class:`WorkspaceSpec`, which the orchestrator reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from containai.fsm._errors import ConfigError
from containai.model._config import (
    CONFIG_ENV_VAR,
    ENV_VARS,
    KEYS,
    Config,
    Layer,
    check_key,
    find_workspace_config,
    flatten,
    load_file,
    parse_port_range,
    parse_value,
    unflatten,
    user_config_path,
    validate,
)
from containai.model._naming import container_name, sanitize_hostname
from containai.model._resources import (
    default_cpus,
    default_memory,
    format_size,
    nano_cpus,
    parse_cpus,
    parse_memory,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SOURCE = "default"
FILE_SOURCES = ("user", "workspace", "config")


class Overrides(msgspec.Struct, frozen=True, kw_only=True):
    """Settings given as command-line flags; ``None`` means "not given"."""

    memory: str | None = None
    cpus: float | None = None
    data_volume: str | None = None
    agent: str | None = None
    config_path: str | None = None
    port_range: str | None = None
    forward_agent: bool | None = None
    engine_socket: str | None = None
    runtime: str | None = None
    inner_docker: bool | None = None
    env: dict[str, str] = msgspec.field(default_factory=dict)


#: Overrides field → (key, flag spelling used as the source).
FLAGS: dict[str, tuple[str, str]] = {
    "memory": ("resources.memory_limit", "--memory"),
    "cpus": ("resources.cpu_limit", "--cpus"),
    "data_volume": ("agent.data_volume", "--data-volume"),
    "agent": ("agent.default", "--agent"),
    "port_range": ("ssh.port_range", "--ssh-port-range"),
    "forward_agent": ("ssh.forward_agent", "--forward-agent"),
    "engine_socket": ("engine.socket", "--engine"),
    "runtime": ("engine.runtime", "--runtime"),
    "inner_docker": ("engine.inner_docker", "--inner-docker"),
}


class Setting(msgspec.Struct, frozen=True):
    """One effective setting: its dotted key, value (as TOML would hold it) and source."""

    key: str
    value: object
    source: str


class ResolvedConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The merged configuration and where each key's value came from.

    Sources are ``default``, ``user:PATH``, ``workspace:PATH``, ``config:PATH``, ``env:VAR``
    and ``flag:--option``.
    """

    config: Config
    settings: dict[str, Setting]
    files: tuple[str, ...]

    def get(self, key: str) -> Setting:
        """The setting for ``key``.

        Raises:
            ConfigError: the key is unknown, or is an ``env.NAME`` that is not set.
        """
        setting = self.settings.get(check_key(key))
        if setting is None:
            raise ConfigError(f"{key} is not set")
        return setting

    def source(self, key: str) -> str:
        return self.get(key).source


def _single(key: str, value: object, where: str) -> Layer:
    # Validate a lone value in context so its error names the variable or flag it came from.
    layer = {key: value}
    validate(unflatten(layer), where)
    return layer


def _layers(
    workspace: Path | None, overrides: Overrides, environ: Mapping[str, str]
) -> list[tuple[str, Layer]]:
    layers: list[tuple[str, Layer]] = []
    user = user_config_path()
    if user.is_file():
        layers.append((f"user:{user}", load_file(user)))
    if workspace is not None:
        found = find_workspace_config(workspace)
        if found is not None:
            layers.append((f"workspace:{found}", load_file(found)))
    explicit, origin = overrides.config_path, "--config"
    if explicit is None and environ.get(CONFIG_ENV_VAR):
        explicit, origin = environ[CONFIG_ENV_VAR], CONFIG_ENV_VAR
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {explicit} (from {origin}) does not exist")
        layers.append((f"config:{path}", load_file(path)))
    for var, key in ENV_VARS.items():
        text = environ.get(var, "")
        if text:
            where = f"environment variable {var}"
            try:
                value = parse_value(key, text)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            layers.append((f"env:{var}", _single(key, value, where)))
    for field, (key, flag) in FLAGS.items():
        value = getattr(overrides, field)
        if value is not None:
            layers.append((f"flag:{flag}", _single(key, value, flag)))
    for name, value in overrides.env.items():
        layers.append(("flag:--env", _single(f"env.{name}", value, f"--env {name}")))
    return layers


def load_config(
    workspace: Path | None = None,
    overrides: Overrides | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Merge defaults, the user file, the workspace file, ``--config``, ``CONTAINAI_*``
    variables and flags, per key, in that order of increasing precedence.

    Args:
        workspace: the workspace directory whose ``.containai/config.toml`` applies, if any.
        overrides: command-line flags.
        environ: the environment to read ``CONTAINAI_*`` from (default ``os.environ``).

    Returns:
        The merged :class:`Config` with a source for every key. Unset resource limits are
        filled with the host-relative defaults (half of the host).

    Raises:
        ConfigError: a file is unreadable or invalid, the explicit config file is missing, or a
            variable or flag has an invalid value. The message names the culprit.
    """
    overrides = overrides or Overrides()
    environ = os.environ if environ is None else environ
    layers = _layers(workspace, overrides, environ)

    merged: dict[str, tuple[object, str]] = {
        key: (value, DEFAULT_SOURCE)
        for key, value in flatten(msgspec.to_builtins(Config())).items()
    }
    merged.setdefault("resources.memory_limit", (format_size(default_memory()), DEFAULT_SOURCE))
    merged.setdefault("resources.cpu_limit", (default_cpus(), DEFAULT_SOURCE))
    for source, layer in layers:
        for key, value in layer.items():
            merged[key] = (value, source)

    config = validate(unflatten({k: v for k, (v, _) in merged.items()}), "merged configuration")
    order = {key: i for i, key in enumerate(KEYS)}
    keys = sorted(merged, key=lambda k: (order.get(k, len(order)), k))
    settings = {k: Setting(k, merged[k][0], merged[k][1]) for k in keys}
    files = tuple(
        path for kind, _, path in (s.partition(":") for s, _ in layers) if kind in FILE_SOURCES
    )
    return ResolvedConfig(config=config, settings=settings, files=files)


class WorkspaceSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the orchestrator needs to create a workspace's container."""

    path: str
    """Absolute, symlinks resolved; an existing directory."""
    name: str
    """Base container name, before any collision suffix."""
    hostname: str
    data_volume: str
    agent: str
    memory: int
    """Memory limit in bytes (memory+swap is the same: no swap)."""
    nano_cpus: int
    port_range: tuple[int, int]
    forward_agent: bool
    env: dict[str, str]
    engine_socket: str
    runtime: str
    """``auto``, ``runc`` or ``sysbox-runc``."""
    inner_docker: bool
    config: Config
    """The merged configuration, for anything else."""


def workspace_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with symlinks resolved.

    Raises:
        ConfigError: it does not exist or is not a directory.
    """
    try:
        resolved = Path(path).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise ConfigError(f"workspace {path} does not exist") from None
    if not resolved.is_dir():
        raise ConfigError(f"workspace {path} is not a directory")
    return resolved


def resolve_workspace(
    path: str | os.PathLike[str],
    overrides: Overrides | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> WorkspaceSpec:
    """Resolve the workspace at ``path`` with its configuration.

    Synchronous and blocking (file reads, one ``git`` subprocess): call it from a worker thread
    in async code.

    Args:
        path: the workspace directory.
        overrides: command-line flags.
        environ: the environment (default ``os.environ``): ``CONTAINAI_*`` settings and the
            values of ``env.import`` names.

    Raises:
        ConfigError: the directory does not exist or the configuration is invalid.
    """
    environ = os.environ if environ is None else environ
    ws = workspace_path(path)
    resolved = load_config(ws, overrides, environ)
    cfg = resolved.config
    name = container_name(ws)
    memory = cfg.resources.memory_limit
    cpus = cfg.resources.cpu_limit
    # load_config fills both defaults
    assert memory is not None
    assert cpus is not None
    return WorkspaceSpec(
        path=str(ws),
        name=name,
        hostname=sanitize_hostname(name),
        data_volume=cfg.agent.data_volume,
        agent=cfg.agent.default,
        memory=parse_memory(memory),
        nano_cpus=nano_cpus(parse_cpus(cpus)),
        port_range=parse_port_range(cfg.ssh.port_range),
        forward_agent=cfg.ssh.forward_agent,
        env=cfg.env_vars(environ),
        engine_socket=cfg.engine.socket,
        runtime=cfg.engine.runtime,
        inner_docker=cfg.engine.inner_docker,
        config=cfg,
    )
