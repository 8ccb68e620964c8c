"""``cai config list|get|set|unset``: show the effective settings and edit config files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from containai.model import ResolvedConfig

WORKSPACE = typer.Option(
    None,
    "--workspace",
    "-w",
    help="The workspace whose config applies (list/get; default: the current directory) "
    "or is edited (set/unset).",
)
USER = typer.Option(False, "--user", help="Edit the user file (the default for set/unset).")
CONFIG = typer.Option(None, "--config", help="Read this config file too (highest file precedence).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _display(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _resolved(workspace: Path | None, config: Path | None) -> ResolvedConfig:
    from containai.model import Overrides, load_config, workspace_path

    ws = workspace_path(workspace if workspace is not None else Path.cwd())
    overrides = Overrides(config_path=str(config) if config else None)
    return load_config(ws, overrides)


def _target(workspace: Path | None, user: bool) -> Path:
    from containai.fsm._errors import UsageError
    from containai.model import config_file_for, workspace_path

    if workspace is not None and user:
        raise UsageError("pass either --workspace or --user, not both")
    return config_file_for(workspace_path(workspace) if workspace is not None else None)


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(
        name="config",
        help="Show and edit configuration (flag > CONTAINAI_* > --config > workspace > user).",
        no_args_is_help=True,
    )

    @config_app.command("list")
    def list_(
        workspace: Path | None = WORKSPACE,
        config: Path | None = CONFIG,
        json_: bool = JSON,
    ) -> None:
        """Every effective setting: KEY, VALUE and SOURCE."""
        resolved = _resolved(workspace, config)
        settings = list(resolved.settings.values())
        if json_:
            import msgspec

            print(msgspec.json.encode(settings).decode())
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("KEY", "VALUE", "SOURCE"):
            table.add_column(column, overflow="fold")
        for s in settings:
            table.add_row(s.key, _display(s.value), s.source)
        Console(soft_wrap=True).print(table)

    @config_app.command("get")
    def get(
        key: str = typer.Argument(..., help="A dotted key, e.g. resources.memory_limit."),
        workspace: Path | None = WORKSPACE,
        config: Path | None = CONFIG,
        json_: bool = JSON,
    ) -> None:
        """Print one setting's effective value (with --json: its source too)."""
        resolved = _resolved(workspace, config)
        setting = resolved.get(key)
        if json_:
            import msgspec

            print(msgspec.json.encode(setting).decode())
        else:
            print(_display(setting.value))

    @config_app.command("set")
    def set_(
        key: str = typer.Argument(..., help="A dotted key, e.g. resources.memory_limit."),
        value: str = typer.Argument(..., help="The value; lists as a,b or a TOML array."),
        workspace: Path | None = WORKSPACE,
        user: bool = USER,
    ) -> None:
        """Set KEY in the user file, or with --workspace in the workspace's file."""
        from containai.model import set_value

        path = _target(workspace, user)
        written = set_value(path, key, value)
        print(f"{key} = {_display(written)}  ({path})")

    @config_app.command("unset")
    def unset(
        key: str = typer.Argument(..., help="A dotted key, e.g. resources.memory_limit."),
        workspace: Path | None = WORKSPACE,
        user: bool = USER,
    ) -> None:
        """Remove KEY from the user file, or with --workspace from the workspace's file."""
        from containai.model import unset_value

        path = _target(workspace, user)
        if unset_value(path, key):
            print(f"removed {key}  ({path})")
        else:
            print(f"{key} was not set in {path}")

    app.add_typer(config_app, name="config")
