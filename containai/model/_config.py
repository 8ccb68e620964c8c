"""The configuration schema, its files, and how their keys are merged.

Theory of operation: every source of settings is flattened to a *layer*, a mapping from a dotted
key (``resources.memory_limit``) to a TOML-native value. Layers are validated one at a time, so
an error names the file, environment variable or flag it came from, and then merged **per key**
(not per file) in this order, lowest first::

    defaults < user file < workspace file < --config file < CONTAINAI_* variables < flags

The merged layer is converted once more into :class:`Config`; the key's winning layer is kept as
its *source* (``default``, ``user:PATH``, ``workspace:PATH``, ``config:PATH``, ``env:VAR``,
``flag:--opt``) for ``cai config list``.

Validation lives in the section Structs' ``__post_init__``, so a value is checked the same way
whether it comes from a file, the environment, a flag, or ``cai config set``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path

import msgspec

from containai._defaults import DEFAULT_DATA_VOLUME, ENGINE_HOST, SSH_PORT_RANGE, config_home
from containai.fsm._errors import ConfigError
from containai.model._resources import (
    parse_cpus,
    parse_memory,
)

CONFIG_FILE = "config.toml"
WORKSPACE_DIR = ".containai"
RUNTIMES = ("auto", "runc", "sysbox-runc")
ENGINE_SCHEMES = ("unix://", "tcp://", "ssh://")
MIN_PORT, MAX_PORT = 1024, 65535

_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
_AGENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PORTS = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def _value_error(fn: typing.Callable[[], object]) -> None:
    # msgspec turns ValueError raised in __post_init__ into a ValidationError with a path.
    try:
        fn()
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def validate_volume(name: str) -> str:
    """Check a Docker volume name (``^[a-zA-Z0-9][a-zA-Z0-9_.-]*$``, 1-255 characters).

    Raises:
        ConfigError: the name is not valid.
    """
    if not _VOLUME.match(name):
        raise ConfigError(
            f"invalid data volume name {name!r}: use 1-255 characters from [a-zA-Z0-9_.-], "
            "starting with a letter or digit"
        )
    return name


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse ``"2300-2500"`` (or a single port ``"2300"``) into ``(start, end)``.

    Raises:
        ConfigError: not a range of ports between 1024 and 65535 with start <= end.
    """
    match = _PORTS.match(text)
    if match is None:
        raise ConfigError(f"invalid SSH port range {text!r}: expected START-END, e.g. 2300-2500")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if not MIN_PORT <= start <= end <= MAX_PORT:
        raise ConfigError(
            f"invalid SSH port range {text!r}: ports must be {MIN_PORT}-{MAX_PORT}, start <= end"
        )
    return start, end


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class AgentSection(_Section, frozen=True):
    """``[agent]``: which agent runs, and the data volume that holds its state."""

    default: str = "claude"
    data_volume: str = DEFAULT_DATA_VOLUME

    def __post_init__(self) -> None:
        if not _AGENT.match(self.default):
            raise ValueError(f"agent.default: invalid agent name {self.default!r}")
        _value_error(lambda: validate_volume(self.data_volume))


class ResourcesSection(_Section, frozen=True):
    """``[resources]``: limits; unset means half of the host."""

    memory_limit: str | int | None = None
    cpu_limit: float | None = None

    def __post_init__(self) -> None:
        if self.memory_limit is not None:
            memory = self.memory_limit
            _value_error(lambda: parse_memory(memory, what="resources.memory_limit"))
        if self.cpu_limit is not None:
            cpus = self.cpu_limit
            _value_error(lambda: parse_cpus(cpus, what="resources.cpu_limit"))


class SSHSection(_Section, frozen=True):
    """``[ssh]``: the host port range published for sshd, and agent forwarding."""

    port_range: str = f"{SSH_PORT_RANGE[0]}-{SSH_PORT_RANGE[1]}"
    forward_agent: bool = False

    def __post_init__(self) -> None:
        _value_error(lambda: parse_port_range(self.port_range))


class ImportSection(_Section, frozen=True):
    """``[import]``: what ``cai import`` copies beyond its manifest, and whether secrets go too."""

    additional_paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    secrets: bool = True

    def __post_init__(self) -> None:
        for path in self.additional_paths:
            if not path.startswith(("~/", "/")) or ".." in Path(path).parts:
                raise ValueError(
                    f"import.additional_paths: {path!r} must start with ~/ or / "
                    "and must not contain '..'"
                )
        for pattern in self.excludes:
            if not pattern:
                raise ValueError("import.excludes: empty pattern")


class EngineSection(_Section, frozen=True):
    """``[engine]``: the Docker engine to use and how containers run on it."""

    socket: str = ENGINE_HOST
    runtime: str = "auto"
    inner_docker: bool = False

    def __post_init__(self) -> None:
        if not self.socket.startswith(ENGINE_SCHEMES):
            raise ValueError(
                f"engine.socket: {self.socket!r} must start with one of {', '.join(ENGINE_SCHEMES)}"
            )
        if self.runtime not in RUNTIMES:
            raise ValueError(
                f"engine.runtime: {self.runtime!r} is not one of {', '.join(RUNTIMES)}"
            )


class Config(_Section, frozen=True):
    """The whole configuration: one file's content, or the merged result of every source."""

    agent: AgentSection = msgspec.field(default_factory=AgentSection)
    resources: ResourcesSection = msgspec.field(default_factory=ResourcesSection)
    ssh: SSHSection = msgspec.field(default_factory=SSHSection)
    env: dict[str, str | tuple[str, ...]] = msgspec.field(default_factory=dict)
    import_: ImportSection = msgspec.field(default_factory=ImportSection, name="import")
    engine: EngineSection = msgspec.field(default_factory=EngineSection)

    def __post_init__(self) -> None:
        for name, value in self.env.items():
            if name == "import":
                if not isinstance(value, tuple):
                    raise ValueError('env.import: expected a list of names, e.g. ["GH_TOKEN"]')
                bad = [n for n in value if not _ENV_NAME.match(n)]
                if bad:
                    raise ValueError(f"env.import: invalid variable name {bad[0]!r}")
            elif not _ENV_NAME.match(name):
                raise ValueError(f"env.{name}: invalid variable name (use [A-Za-z_][A-Za-z0-9_]*)")
            elif not isinstance(value, str):
                raise ValueError(f"env.{name}: expected a string value")

    def env_vars(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables for the workspace: ``[env]``'s values, plus the host's values of the
        names in ``env.import`` that are set (an explicit value wins over an imported one)."""
        imported = self.env.get("import", ())
        out = {n: environ[n] for n in imported if n in environ}
        out.update({k: v for k, v in self.env.items() if isinstance(v, str)})
        return out


# -- the schema as dotted keys ----------------------------------------------------------------
def _sections() -> dict[str, type[_Section]]:
    out: dict[str, type[_Section]] = {}
    for f in msgspec.structs.fields(Config):
        if isinstance(f.type, type) and issubclass(f.type, _Section):
            out[f.encode_name] = f.type
    return out


SECTIONS = _sections()
_FIELD_TYPES: dict[str, object] = {
    f"{section}.{f.encode_name}": f.type
    for section, cls in SECTIONS.items()
    for f in msgspec.structs.fields(cls)
}
_FIELD_TYPES["env.import"] = tuple[str, ...]
#: Every fixed key, in schema order (``env.NAME`` keys are free-form).
KEYS: tuple[str, ...] = tuple(_FIELD_TYPES)

#: ``CONTAINAI_*`` environment variables and the key each sets.
ENV_VARS: dict[str, str] = {
    "CONTAINAI_AGENT": "agent.default",
    "CONTAINAI_DATA_VOLUME": "agent.data_volume",
    "CONTAINAI_MEMORY": "resources.memory_limit",
    "CONTAINAI_CPUS": "resources.cpu_limit",
    "CONTAINAI_SSH_PORT_RANGE": "ssh.port_range",
    "CONTAINAI_SSH_FORWARD_AGENT": "ssh.forward_agent",
    "CONTAINAI_ENGINE_SOCKET": "engine.socket",
    "CONTAINAI_RUNTIME": "engine.runtime",
    "CONTAINAI_INNER_DOCKER": "engine.inner_docker",
}
#: Names a config file to read, like ``--config`` (the flag wins).
CONFIG_ENV_VAR = "CONTAINAI_CONFIG"


def _hint(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_key(key: str) -> str:
    """Return ``key`` if it names a setting (``section.name`` or ``env.NAME``).

    Raises:
        ConfigError: unknown key, with a "did you mean" hint.
    """
    if key in _FIELD_TYPES:
        return key
    section, _, name = key.partition(".")
    if section == "env" and _ENV_NAME.match(name):
        return key
    raise ConfigError(f"unknown key {key!r}{_hint(key, KEYS)} (see `cai config list`)")


def _kinds(tp: object) -> set[object]:
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    return {typing.get_origin(a) or a for a in args}


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_value(key: str, text: str) -> object:
    """Turn ``text`` (from the command line or an environment variable) into ``key``'s type:
    booleans from ``true/false/yes/no/on/off/1/0``, numbers, lists as ``a,b`` or a TOML array.

    Raises:
        ConfigError: ``text`` cannot be read as that type, or ``key`` is unknown.
    """
    kinds = _kinds(_FIELD_TYPES.get(check_key(key), str))
    if bool in kinds:
        word = text.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ConfigError(f"{key}: {text!r} is not a boolean (true/false, yes/no, 1/0)")
    if tuple in kinds:
        if text.lstrip().startswith("["):
            try:
                value = msgspec.toml.decode(f"v = {text}".encode())["v"]
                return list(msgspec.convert(value, tuple[str, ...]))
            except msgspec.MsgspecError:
                raise ConfigError(
                    f'{key}: {text!r} is not a list of strings like ["a", "b"]'
                ) from None
        return [item.strip() for item in text.split(",") if item.strip()]
    if float in kinds:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}: {text!r} is not a number") from None
    return text


# -- layers -----------------------------------------------------------------------------------
Layer = dict[str, object]


def flatten(raw: Mapping[str, object]) -> Layer:
    """``{"agent": {"default": "x"}}`` → ``{"agent.default": "x"}`` (TOML tables, two levels)."""
    out: Layer = {}
    for section, table in raw.items():
        if isinstance(table, Mapping):
            for name, value in table.items():
                if value is not None:
                    out[f"{section}.{name}"] = value
    return out


def unflatten(layer: Mapping[str, object]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for key, value in layer.items():
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name] = value
    return out


def _check_keys(raw: Mapping[str, object], where: str) -> None:
    for section, table in raw.items():
        if section not in SECTIONS and section != "env":
            raise ConfigError(
                f"{where}: unknown section [{section}]{_hint(section, [*SECTIONS, 'env'])}"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: {section} must be a table ([{section}])")
        if section == "env":
            # msgspec would name a bad value only as env[...]: name the variable here.
            for name, value in table.items():
                if name != "import" and not isinstance(value, str):
                    raise ConfigError(f"{where}: env.{name}: expected a string value")
            continue
        for name in table:
            key = f"{section}.{name}"
            if key not in _FIELD_TYPES:
                raise ConfigError(f"{where}: unknown key {key!r}{_hint(key, KEYS)}")


def validate(raw: Mapping[str, object], where: str) -> Config:
    """Validate one source's settings (a nested mapping as TOML gives it) into a :class:`Config`.

    Raises:
        ConfigError: an unknown key (with a hint) or an invalid value; ``where`` opens the message.
    """
    _check_keys(raw, where)
    try:
        return msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at `")
        if not message:
            message, path = path, ""
        path = path.rstrip("`").removeprefix("$").lstrip(".")
        if path and path not in message:
            message = f"{path}: {message}"
        raise ConfigError(f"{where}: {message}") from None


def read_toml(path: Path) -> dict[str, object]:
    """Read a TOML file into a dict.

    Raises:
        ConfigError: the file cannot be read, or its syntax is wrong (naming line and column).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = msgspec.toml.decode(data)
    except msgspec.DecodeError as exc:
        reason = str(exc)
        match = _AT_LINE.search(reason)
        if match:
            reason = _AT_LINE.sub("", reason)
            raise ConfigError(
                f"{path}, line {match[1]}, column {match[2]}: invalid TOML: {reason}"
            ) from None
        raise ConfigError(f"{path}: invalid TOML: {reason}") from None
    assert isinstance(raw, dict)
    return raw


def load_file(path: Path) -> Layer:
    """Read and validate one config file, flattened.

    Raises:
        ConfigError: unreadable, bad syntax, unknown key or invalid value.
    """
    raw = read_toml(path)
    validate(raw, str(path))
    return flatten(raw)


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/containai/config.toml``."""
    return config_home() / CONFIG_FILE


def find_workspace_config(workspace: Path) -> Path | None:
    """The ``.containai/config.toml`` in the nearest ancestor of ``workspace`` (itself
    included), looking no higher than the enclosing git root and never at ``/``."""
    for directory in (workspace, *workspace.parents):
        if directory == directory.parent:
            return None
        candidate = directory / WORKSPACE_DIR / CONFIG_FILE
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None
    return None
