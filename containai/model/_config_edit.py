"""``cai config set`` / ``unset``: edit one config file in place, keeping comments and layout.

The edit is made on a tomlkit document, the whole result is validated like any config file,
and only then written, atomically (a temporary file in the same directory, mode 0600, renamed
over the old one). An invalid value leaves the file untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING

import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from containai.fsm._errors import ConfigError
from containai.model._config import (
    CONFIG_FILE,
    WORKSPACE_DIR,
    check_key,
    find_workspace_config,
    parse_value,
    read_toml,
    user_config_path,
    validate,
)

if TYPE_CHECKING:
    from pathlib import Path


def config_file_for(workspace: Path | None) -> Path:
    """The file ``cai config set`` edits: the user file, or for a workspace the
    ``.containai/config.toml`` that applies to it (created in the workspace itself if none)."""
    if workspace is None:
        return user_config_path()
    return find_workspace_config(workspace) or workspace / WORKSPACE_DIR / CONFIG_FILE


def _load(path: Path) -> tomlkit.TOMLDocument:
    if not path.exists():
        return tomlkit.document()
    read_toml(path)  # the syntax error message names line and column
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except tomlkit.exceptions.ParseError as exc:  # pragma: no cover - read_toml caught it
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _write(path: Path, doc: tomlkit.TOMLDocument) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(tomlkit.dumps(doc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def set_value(path: Path, key: str, text: str) -> object:
    """Set ``key`` to ``text`` (converted to the key's type) in the config file at ``path``.

    Returns:
        The value written.

    Raises:
        ConfigError: unknown key, a value of the wrong type or invalid, or the existing file is
            invalid. The file is left untouched.
    """
    value = parse_value(key, text)
    section, _, name = check_key(key).partition(".")
    doc = _load(path)
    table = doc.get(section)
    if table is None:
        table = tomlkit.table()
        doc.add(section, table)
    elif not isinstance(table, Table | dict):
        raise ConfigError(f"{path}: {section} is not a table")
    table[name] = value
    validate(doc.unwrap(), str(path))
    _write(path, doc)
    return value


def unset_value(path: Path, key: str) -> bool:
    """Remove ``key`` from the config file at ``path``; drop its section if it becomes empty.

    Returns:
        Whether the key was present.

    Raises:
        ConfigError: unknown key, or the existing file is invalid.
    """
    section, _, name = check_key(key).partition(".")
    if not path.exists():
        return False
    doc = _load(path)
    table = doc.get(section)
    if not isinstance(table, Table | dict) or name not in table:
        return False
    del table[name]
    if not table:
        del doc[section]
    _write(path, doc)
    return True
