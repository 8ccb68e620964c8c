"""``cai version``: print the version."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def version(
        json_: bool = typer.Option(False, "--json", help="Print a JSON document."),
    ) -> None:
        """Print cai's version."""
        from containai import __version__

        if json_:
            import msgspec

            print(msgspec.json.encode({"version": __version__}).decode())
        else:
            print(f"cai {__version__}")
