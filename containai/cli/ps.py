"""``cai ps`` / ``cai status``: the workspaces on this engine and their machine states."""

from __future__ import annotations

from pathlib import Path

import typer

from containai.cli import _options
from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    def ps(
        paths: list[Path] = typer.Argument(None, help="Only these workspaces."),
        json_: bool = _options.JSON,
    ) -> int:
        """List workspaces: name, workspace, state, SSH alias and port, uptime, runtime, image."""
        return run_async(_ps, [str(p.resolve()) for p in paths or []], json_)

    app.command("ps")(ps)
    app.command("status")(ps)


async def _ps(paths: list[str], json_: bool) -> int:
    from containai.orchestrator import open_orchestrator

    async with open_orchestrator(journal=False) as orch:
        await orch.settled(within=15)
        workspaces = [w for w in orch.workspaces() if not paths or w.workspace in paths]
    if json_:
        import msgspec

        print(msgspec.json.encode(workspaces).decode())
        return 0
    from rich.console import Console
    from rich.table import Table

    from containai.cli._render import cpus, duration, size

    table = Table(box=None, pad_edge=False)
    for column in (
        "NAME",
        "WORKSPACE",
        "STATE",
        "SSH",
        "PORT",
        "UPTIME",
        "RUNTIME",
        "MEM",
        "CPUS",
        "IMAGE",
    ):
        table.add_column(column)
    for w in workspaces:
        style = {"sshd-ready": "green", "attached": "green", "failed": "red"}.get(w.state, "yellow")
        table.add_row(
            w.name,
            w.workspace,
            f"[{style}]{w.state}[/]" + (f" ({w.reason})" if w.reason else ""),
            w.ssh_alias,
            str(w.ssh_port or "-"),
            duration(w.uptime) if w.uptime else "-",
            w.runtime or "-",
            size(w.memory),
            cpus(w.nano_cpus),
            w.image or "-",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=250)  # piped: never truncate columns
    console.print(table)
    if not workspaces:
        print("no workspaces; start one with `cai up PATH`")
    return 0
