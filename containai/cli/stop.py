"""``cai stop`` and ``cai rm``: stop or remove many workspaces in parallel."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from containai.cli import _options
from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    @app.command()
    def stop(
        paths: list[Path] = _options.PATHS,
        container: list[str] = _options.CONTAINERS,
        all_: bool = _options.ALL,
        timeout: float = typer.Option(10.0, "--timeout", "-t", help="Seconds before a kill."),
    ) -> int:
        """Stop workspaces gracefully (systemd shutdown), killing after --timeout."""
        return run_async(_act, "stop", paths, container, all_, timeout, False)

    @app.command()
    def rm(
        paths: list[Path] = _options.PATHS,
        container: list[str] = _options.CONTAINERS,
        all_: bool = _options.ALL,
        volumes: bool = typer.Option(False, "--volumes", help="Also remove the data volume."),
    ) -> int:
        """Remove workspace containers (and their SSH entries); keep data volumes by default."""
        return run_async(_act, "rm", paths, container, all_, 10.0, volumes)


async def _act(
    verb: str,
    paths: list[Path] | None,
    containers: list[str] | None,
    all_: bool,
    grace: float,
    volumes: bool,
) -> int:
    import anyio

    from containai.cli._targets import resolve_targets
    from containai.fsm._errors import CaiError
    from containai.orchestrator import open_orchestrator

    failures: list[str] = []
    async with open_orchestrator() as orch:
        await orch.settled(within=5)
        names = resolve_targets(orch, paths, containers, all_)

        async def one(name: str) -> None:
            try:
                if verb == "stop":
                    status = await orch.stop(name, grace=grace)
                    print(f"{name}: {status.state}")
                else:
                    await orch.remove(name, volumes=volumes)
                    print(f"{name}: removed")
            except CaiError as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, name)
    for failure in failures:
        print(failure, file=sys.stderr)
    if not names:
        print("nothing to do")
    return 1 if failures else 0
