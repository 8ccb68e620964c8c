"""``cai export [PATH] [-o FILE] [--data-volume NAME]``: write the data volume as a .tar.gz."""

from __future__ import annotations

from pathlib import Path

import typer

from containai.cli._app import run_async
from containai.cli.import_ import DATA_VOLUME, WORKSPACE


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        path: Path | None = WORKSPACE,
        output: Path | None = typer.Option(
            None,
            "--output",
            "-o",
            help="The archive to write, or an existing directory for the default name "
            "containai-export-<volume>-<UTC time>.tar.gz (default: the current directory).",
        ),
        data_volume: str | None = DATA_VOLUME,
    ) -> int:
        """Write the data volume as a .tar.gz; `cai import --from FILE` restores it.
        Prints the archive's absolute path."""
        return run_async(_export, path, output, data_volume)


async def _export(path: Path | None, output: Path | None, data_volume: str | None) -> int:
    import anyio.to_thread

    from containai.cli.import_ import resolve_target
    from containai.orchestrator._transfer import export_volume
    from containai.orchestrator.adapters._volumes import open_volumes

    volume, config = await anyio.to_thread.run_sync(resolve_target, path, data_volume)
    async with open_volumes(config.engine.socket) as port:
        written = await export_volume(port, volume, output)
    print(written)
    return 0
