"""The typer application, error handling, and the bridge to the async world.

Command modules (one per command) each define ``register(app)``; :data:`COMMAND_MODULES` lists
them. Modules import the orchestrator lazily inside their command functions so ``cai --help``
stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from containai.fsm._errors import CaiError

T = TypeVar("T")

#: One module per command under ``containai.cli``; each defines ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "version",
    "up",
    "ps",
    "stop",
    "events",
    "shell",
    "batch",
    "setup",
    "doctor",
    "image",
    "config",
    "ssh",
    "import_",
    "export",
)

app = typer.Typer(
    name="cai",
    help="Run AI coding agents in systemd system containers, reached over SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """Run AI coding agents in systemd system containers, reached over SSH."""


def build_app() -> typer.Typer:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"containai.cli.{name}")
        module.register(app)
    return app


def run_async(fn: Callable[..., Awaitable[T]], *args: object) -> T:
    """Run ``fn(*args)`` on asyncio (the real adapters are asyncio-only)."""
    import anyio

    return anyio.run(fn, *args, backend="asyncio")


def report_error(exc: CaiError) -> int:
    """Print a :class:`CaiError` as ``TypeName: message`` on stderr; return its exit code."""
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return exc.exit_code
