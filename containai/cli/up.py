"""``cai up PATH...``: bring workspaces up in parallel, with a live display."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from containai.cli import _options
from containai.cli._app import run_async

if TYPE_CHECKING:
    from rich.table import Table

    from containai.model import Overrides
    from containai.orchestrator import Orchestrator


class _Row:
    def __init__(self, path: str) -> None:
        self.path = path
        self.name = ""
        self.state = "waiting"
        self.detail = ""
        self.started = time.monotonic()
        self.ended: float | None = None

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        paths: list[Path] = typer.Argument(None, help="Workspace directories (default: .)."),
        parallel: int = typer.Option(
            0, "--parallel", "-j", help="Max workspaces coming up at once."
        ),
        json_: bool = _options.JSON,
        fresh: bool = typer.Option(
            False, "--fresh", help="Recreate the container (keeps the data volume)."
        ),
        memory: str = typer.Option(None, "--memory", help="Memory limit, e.g. 4g."),
        cpus: float = typer.Option(None, "--cpus", help="CPU limit, e.g. 2 or 1.5."),
        data_volume: str = typer.Option(None, "--data-volume", help="Data volume name."),
        config: Path = _options.CONFIG,
        image: str = typer.Option(None, "--image", help="Image to create new containers from."),
        template: str = typer.Option(
            None, "--template", help="Build from ~/.config/containai/templates/NAME/Dockerfile."
        ),
        reset: bool = typer.Option(
            False, "--reset", help="Recreate on a new, empty data volume (the old one is kept)."
        ),
    ) -> int:
        """Bring workspaces up to sshd-ready, many at once; reuse what is already up."""
        targets = [p.resolve() for p in (paths or [Path.cwd()])]
        overrides = _options.overrides(
            memory=memory, cpus=cpus, data_volume=data_volume, config=config
        )
        options = {"fresh": fresh, "reset": reset, "image": image, "template": template}
        return run_async(_up, targets, parallel, json_, overrides, options)


async def _up(
    paths: list[Path], parallel: int, json_: bool, overrides: Overrides, options: dict[str, Any]
) -> int:
    import anyio

    from containai.orchestrator import open_orchestrator

    rows = {str(p): _Row(str(p)) for p in paths}
    errors: dict[str, str] = {}
    codes: dict[str, int] = {}
    async with open_orchestrator(parallel=parallel or None) as orch:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_display, orch, rows, json_)

            async def one(path: Path) -> None:
                from containai.fsm._errors import CaiError

                row = rows[str(path)]
                row.state = "starting"
                try:
                    status = await orch.up(path, overrides=overrides, **options)
                    row.name, row.state = status.name, status.state
                    for warning in status.warnings:
                        print(f"warning: {warning}", file=sys.stderr)
                except CaiError as exc:
                    row.state, row.detail = "failed", str(exc)
                    errors[str(path)] = f"{type(exc).__name__}: {exc}"
                    codes[str(path)] = exc.exit_code
                row.ended = time.monotonic()

            async with anyio.create_task_group() as ups:
                for path in paths:
                    ups.start_soon(one, path)
            await anyio.sleep(0.05)  # let the display draw the final states
            tg.cancel_scope.cancel()
    if not json_:
        _summary(rows)
    for failed, message in errors.items():
        print(f"{failed}: {message}", file=sys.stderr)
    # one failure: its own exit code (2 for a config error, ...); several: the first path's
    return codes[min(codes)] if codes else 0


async def _display(orch: Orchestrator, rows: dict[str, _Row], json_: bool) -> None:
    from rich.console import Console
    from rich.live import Live

    from containai.cli._render import ndjson

    console = Console(stderr=False)
    live = (
        Live(_table(rows), console=console, auto_refresh=False, transient=False)
        if (not json_ and console.is_terminal)
        else None
    )
    try:
        if live is not None:
            live.start()
        async for record in orch.events():
            row = rows.get(record.workspace)
            if row is None:
                continue
            row.name = record.container
            if row.ended is None:
                row.state = record.to_state
                if record.reason:
                    row.detail = record.reason
            if json_:
                ndjson(record)
            elif live is not None:
                live.update(_table(rows), refresh=True)
            else:
                console.print(
                    f"{record.container or record.workspace}: {record.from_state or '-'} -> "
                    f"{record.to_state} ({row.elapsed():.1f}s)"
                    + (f" {record.reason}" if record.reason else ""),
                    highlight=False,
                )
    finally:
        if live is not None:
            live.update(_table(rows), refresh=True)
            live.stop()


def _table(rows: dict[str, _Row]) -> Table:
    from rich.table import Table

    from containai.cli._render import duration

    table = Table(box=None, pad_edge=False)
    for column in ("WORKSPACE", "CONTAINER", "STATE", "ELAPSED", "DETAIL"):
        table.add_column(column)
    for row in rows.values():
        style = {"sshd-ready": "green", "attached": "green", "failed": "red"}.get(
            row.state, "yellow"
        )
        table.add_row(
            row.path,
            row.name or "-",
            f"[{style}]{row.state}[/]",
            duration(row.elapsed()),
            row.detail,
        )
    return table


def _summary(rows: dict[str, _Row]) -> None:
    ok = sum(1 for r in rows.values() if r.state in ("sshd-ready", "attached"))
    print(f"{ok}/{len(rows)} workspaces sshd-ready", flush=True)
    for row in rows.values():
        if row.state in ("sshd-ready", "attached"):
            print(f"  ssh containai-{row.name}    # {row.path}")
