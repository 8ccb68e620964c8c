"""``cai import [PATH] [--from DIR|ARCHIVE] [--data-volume NAME] [--dry-run] [--no-secrets]
[--json]``: sync host configuration (or restore an export) into the data volume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from containai.cli._app import run_async

if TYPE_CHECKING:
    from containai.model import Config
    from containai.orchestrator._transfer import ImportReport

DATA_VOLUME = typer.Option(
    None, "--data-volume", help="The data volume (default: from config, else containai-data)."
)
WORKSPACE = typer.Argument(
    None, help="A workspace directory whose config decides the data volume (default: none)."
)


def resolve_target(path: Path | None, data_volume: str | None) -> tuple[str, Config]:
    """The data volume and configuration for ``path`` (a workspace) or, without one, for the
    user's config, the environment and ``--data-volume``."""
    from containai.model import Overrides, load_config, resolve_workspace

    overrides = Overrides(data_volume=data_volume)
    if path is not None:
        spec = resolve_workspace(path, overrides)
        return spec.data_volume, spec.config
    config = load_config(None, overrides).config
    return config.agent.data_volume, config


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        path: Path | None = WORKSPACE,
        from_: Path | None = typer.Option(
            None,
            "--from",
            help="Import from this directory instead of $HOME, or restore this archive "
            "(a `cai export` .tar.gz).",
        ),
        data_volume: str | None = DATA_VOLUME,
        dry_run: bool = typer.Option(
            False, "--dry-run", help="List what would change; write nothing."
        ),
        no_secrets: bool = typer.Option(
            False, "--no-secrets", help="Leave out credentials and tokens (secret entries)."
        ),
        json_: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
    ) -> int:
        """Copy host configuration (git, Claude, Codex, Gemini, Copilot, gh, shell, tmux) into
        the data volume, or restore an export with --from ARCHIVE."""
        return run_async(_import, path, from_, data_volume, dry_run, no_secrets, json_)


async def _import(
    path: Path | None,
    from_: Path | None,
    data_volume: str | None,
    dry_run: bool,
    no_secrets: bool,
    json_: bool,
) -> int:
    import anyio.to_thread

    from containai.fsm._errors import ConfigError, UsageError
    from containai.orchestrator._transfer import import_archive, import_config
    from containai.orchestrator.adapters._volumes import open_volumes

    volume, config = await anyio.to_thread.run_sync(resolve_target, path, data_volume)
    source = (from_ or Path.home()).expanduser().absolute()
    if not source.exists():
        raise ConfigError(f"--from {from_}: no such file or directory")
    archive = source.is_file()
    if archive and no_secrets:
        raise UsageError("--no-secrets applies to a host import, not to restoring an archive")
    async with open_volumes(config.engine.socket) as port:
        if archive:
            report = await import_archive(port, volume, source, dry_run=dry_run)
        else:
            report = await import_config(
                port,
                volume,
                source,
                config=config.import_,
                dry_run=dry_run,
                no_secrets=no_secrets,
            )
    if json_:
        import msgspec

        print(msgspec.json.encode(report).decode())
    else:
        _print(report)
    return 0


def _print(report: ImportReport) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    style = {"added": "green", "changed": "yellow", "skipped": "red", "kept": "dim"}
    counts = dict.fromkeys(("added", "changed", "unchanged", "skipped", "kept"), 0)
    absent = 0
    for change in report.changes:
        if change.action == "skipped" and change.reason.endswith("(optional)"):
            absent += 1  # an optional tool the user doesn't have: not worth a line
            continue
        counts[change.action] += 1
        if change.action == "unchanged":
            continue
        mark = " [secret]" if change.secret else ""
        why = f" — {escape(change.reason)}" if change.reason else ""
        console.print(
            f"[{style.get(change.action, '')}]{change.action:9}[/] "
            f"{escape(change.path)}{mark}[dim]{why}[/]"
        )
    summary = ", ".join(f"{n} {action}" for action, n in counts.items() if n) or "nothing"
    head = "dry run, nothing written: " if report.dry_run else ""
    created = " (created)" if report.created_volume else ""
    tail = f"; {absent} optional paths are not on the host" if absent else ""
    console.print(f"{head}{report.source} → volume {report.volume}{created}: {summary}{tail}")
