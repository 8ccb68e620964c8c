"""``cai doctor [--json]``: check the host and the engine; exit 1 on any FAIL."""

from __future__ import annotations

import typer

from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        json_: bool = typer.Option(
            False, "--json", help="Print one JSON document (schema in docs/troubleshooting.md)."
        ),
    ) -> int:
        """Check the engine, runtime and isolation, images, SSH, ports and disk."""
        return run_async(_doctor, json_)


async def _doctor(json_: bool) -> int:
    from containai._defaults import ENGINE_HOST
    from containai.orchestrator._doctor import Status, diagnose
    from containai.orchestrator.adapters._docker import open_docker

    async with open_docker(ENGINE_HOST) as port:
        report = await diagnose(port)
    code = 0 if report.ok else 1
    if json_:
        import msgspec

        print(msgspec.json.encode(report).decode())
        return code

    from rich.console import Console
    from rich.table import Table

    style = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}
    table = Table(title=f"cai doctor: runtime {report.runtime}, isolation {report.isolation}")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for check in report.checks:
        table.add_row(
            check.name, f"[{style[check.status]}]{check.status}[/]", check.detail, check.fix
        )
    console = Console()
    console.print(table)
    failed = [c.name for c in report.checks if c.status == Status.FAIL]
    console.print("all checks passed" if not failed else f"FAIL: {', '.join(failed)}")
    return code
