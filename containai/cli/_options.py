"""Options shared by several commands, so each is declared once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from containai.model import Overrides

JSON = typer.Option(False, "--json", help="Print NDJSON / JSON instead of a table.")
CONTAINERS = typer.Option(None, "--container", "-c", help="A container name (repeatable).")
ALL = typer.Option(False, "--all", "-a", help="Every cai workspace on this engine.")
PATHS = typer.Argument(None, help="Workspace directories (default: the current directory).")
CONFIG = typer.Option(None, "--config", help="Read this config file too (highest file precedence).")


def overrides(
    *,
    memory: str | None = None,
    cpus: float | None = None,
    data_volume: str | None = None,
    config: Path | None = None,
    agent: str | None = None,
) -> Overrides:
    """Build :class:`containai.model.Overrides` from command-line flags."""
    from containai.model import Overrides

    return Overrides(
        memory=memory,
        cpus=cpus,
        data_volume=data_volume,
        config_path=str(config) if config else None,
        agent=agent,
    )
