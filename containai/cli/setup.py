"""``cai setup [--dry-run]``: bring up cai's dedicated Docker engine, or say nothing changes."""

from __future__ import annotations

import typer

from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    @app.command()
    def setup(
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
        within: float = typer.Option(60.0, "--wait", help="Seconds to wait for the engine API."),
    ) -> int:
        """Configure and start the dedicated engine (daemon.json, bridge, service, context)."""
        return run_async(_setup, dry_run, within)


async def _setup(dry_run: bool, within: float) -> int:
    from containai.orchestrator import _engine
    from containai.orchestrator._runtime import REDUCED_ISOLATION_SENTENCE, SYSBOX
    from containai.orchestrator.adapters._docker import open_docker

    layout = _engine.EngineLayout()
    how = "systemd unit" if layout.systemd_marker.exists() else "background dockerd"
    async with open_docker(layout.host) as port:
        plan = await _engine.plan(layout, port)
        print(f"cai engine: {layout.host} ({how}, default runtime {plan.runtime})")
        if plan.nothing_to_change:
            print(f"nothing to change: the engine is up and matches {layout.config}")
        elif dry_run:
            print("plan (dry run, nothing changed):")
            for step in plan.steps:
                print(f"  - {step.describe()}")
        else:
            await _engine.apply(
                plan,
                port,
                within=within,
                on_step=lambda s: print(f"  - {s.describe()}", flush=True),
            )
            logs = "journalctl -u containai-docker" if plan.mode == "systemd" else layout.log
            print(f"done: {len(plan.steps)} change(s); engine log: {logs}")
    if plan.runtime != SYSBOX:
        print(REDUCED_ISOLATION_SENTENCE)
    return 0
