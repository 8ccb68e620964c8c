"""``cai image build [--layer base|sdks|full] [--bootstrap] [--no-cache] [--verbose]``."""

from __future__ import annotations

import typer

from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    image_app = typer.Typer(
        name="image",
        help="Build cai's system-container images (base → sdks → full).",
        no_args_is_help=True,
    )

    @image_app.command("build")
    def build(
        layer: str = typer.Option(
            "base", "--layer", "-l", help="Build the layers up to this one: base, sdks or full."
        ),
        bootstrap: bool = typer.Option(
            False,
            "--bootstrap",
            help="Make the base root filesystem with debootstrap (as root) instead of pulling "
            "debian:bookworm; done automatically when the pull fails.",
        ),
        no_cache: bool = typer.Option(False, "--no-cache", help="Build without the layer cache."),
        trust_host_cas: bool = typer.Option(
            False,
            "--trust-host-cas",
            help="Add this host's local CA certificates (/usr/local/share/ca-certificates) to the "
            "images, for networks whose TLS goes through an intercepting proxy.",
        ),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Stream the build output lines."
        ),
    ) -> int:
        """Build the image layers through the cai engine, tagged with cai's version."""
        return run_async(_build, layer, bootstrap, no_cache, verbose, trust_host_cas)

    app.add_typer(image_app)


async def _build(
    layer: str, bootstrap: bool, no_cache: bool, verbose: bool, trust_host_cas: bool
) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape

    from containai._defaults import ENGINE_HOST
    from containai.orchestrator._images import (
        ImageProgress,
        OutputLine,
        StepFinished,
        StepStarted,
        build_images,
        layers_up_to,
    )
    from containai.orchestrator.adapters._docker_build import open_image_port

    layers_up_to(layer)  # a bad --layer fails before anything connects
    console = Console(stderr=True)
    ca_certs: list[Path] = []
    if trust_host_cas:
        ca_certs = sorted(Path("/usr/local/share/ca-certificates").rglob("*.crt"))
        console.print(f"adding {len(ca_certs)} host CA certificate(s) to the images")
    status = console.status("connecting to the cai engine")

    def show(event: ImageProgress) -> None:
        match event:
            case StepStarted(step=step):
                status.update(f"{escape(step)} …")
            case StepFinished(step=step, seconds=seconds, detail=detail, ok=ok):
                mark = "[green]✓[/]" if ok else "[yellow]✗[/]"
                extra = f" — {escape(detail)}" if detail else ""
                console.print(f"{mark} {escape(step)} [dim]({seconds:.1f} s)[/]{extra}")
            case OutputLine(line=line) if verbose:
                console.print(f"  [dim]{escape(line)}[/]", highlight=False, soft_wrap=True)

    with status:
        async with open_image_port(ENGINE_HOST) as port:
            result = await build_images(
                port,
                layer=layer,
                bootstrap=bootstrap,
                nocache=no_cache,
                ca_certs=ca_certs,
                on_progress=show,
            )
    console.print(
        f"built {', '.join(result.refs)} from {result.base_image} in {result.seconds:.1f} s"
    )
    return 0
