"""``cai ssh cleanup``: forget the SSH config and pinned host keys of workspaces that are gone."""

from __future__ import annotations

import typer

from containai.cli import _options
from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    ssh_app = typer.Typer(
        name="ssh",
        help="Manage the SSH files cai generates (~/.ssh/containai.d, known_hosts).",
        no_args_is_help=True,
    )

    @ssh_app.command()
    def cleanup(
        dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would go."),
        json_: bool = _options.JSON,
    ) -> int:
        """Remove ~/.ssh/containai.d/<name>.conf and pinned host keys of containers that no
        longer exist on the engine. Aborts, deleting nothing, when the engine does not answer."""
        return run_async(_cleanup, dry_run, json_)

    app.add_typer(ssh_app, name="ssh")


async def _cleanup(dry_run: bool, json_: bool) -> int:
    import functools

    import anyio

    from containai._defaults import ENGINE_HOST, SSH_HOST_PREFIX
    from containai.orchestrator import _sshfiles, adapters

    # The live names must come from an engine that answered: list_managed raises
    # DockerUnavailable otherwise, and an empty set here would delete every entry.
    async with adapters.open_default_ports(ENGINE_HOST) as (docker, _ssh, _key):
        live = {view.name for view in await docker.list_managed()}
    stale = await anyio.to_thread.run_sync(
        functools.partial(_sshfiles.cleanup, live, dry_run=dry_run)
    )
    if json_:
        import msgspec

        print(msgspec.json.encode({"dry_run": dry_run, "removed": stale}).decode())
        return 0
    verb = "Would remove" if dry_run else "Removed"
    for name in stale:
        print(f"{verb} SSH config and host keys of {SSH_HOST_PREFIX}{name}")
    if not stale:
        print("Nothing to clean up.")
    return 0
