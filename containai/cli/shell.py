"""``cai shell``, ``cai exec`` and ``cai run``: use a workspace over SSH."""

from __future__ import annotations

from pathlib import Path

import typer

from containai.cli import _options
from containai.cli._app import run_async

AGENTS = {
    "claude": ["claude", "--dangerously-skip-permissions"],
    "codex": ["codex", "--dangerously-bypass-approvals-and-sandbox"],
    "gemini": ["gemini", "--yolo"],
    "copilot": ["copilot", "--allow-all-tools"],
}
_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    @app.command()
    def shell(
        path: Path = typer.Argument(None, help="Workspace directory (default: .)."),
        container: str = typer.Option(None, "--container", "-c", help="A container name."),
    ) -> int:
        """Open a login shell in the workspace (system ssh; agent forwarding per config)."""
        return run_async(_shell, path.resolve() if path else None, container)

    @app.command(context_settings=_PASSTHROUGH)
    def exec(
        args: list[str] = typer.Argument(..., help="[PATH] -- CMD ARGS..."),
        container: str = typer.Option(None, "--container", "-c", help="A container name."),
    ) -> int:
        """Run a command in the workspace; exits with the command's exit code."""
        from containai.cli._session import split_workspace

        path, argv = split_workspace(list(args))
        if not argv:
            raise typer.BadParameter("give a command after --")
        return run_async(_exec, path, container, argv)

    @app.command(context_settings=_PASSTHROUGH)
    def run(
        args: list[str] = typer.Argument(None, help="[PATH] [-- AGENT ARGS...]"),
        agent: str = typer.Option(None, "--agent", help="claude, codex, gemini or copilot."),
        container: str = typer.Option(None, "--container", "-c", help="A container name."),
        config: Path = _options.CONFIG,
    ) -> int:
        """Bring the workspace up and run an agent CLI in it (TTY when interactive)."""
        from containai.cli._session import split_workspace

        words = list(args or [])
        path: Path | None
        extra: list[str]
        if len(words) == 1 and Path(words[0]).is_dir():
            path, extra = Path(words[0]).resolve(), []
        else:
            path, extra = split_workspace(words)
        return run_async(_run, path, container, agent, extra, config)


async def _shell(path: Path | None, container: str | None) -> int:
    from containai.cli._session import bring_up, run_terminal
    from containai.orchestrator import open_orchestrator

    async with open_orchestrator() as orch:
        name = await bring_up(orch, path, container)
        return await run_terminal(orch, name, None)


async def _exec(path: Path | None, container: str | None, argv: list[str]) -> int:
    from containai.cli._session import bring_up, run_captured
    from containai.orchestrator import open_orchestrator

    async with open_orchestrator() as orch:
        name = await bring_up(orch, path, container)
        return await run_captured(orch, name, argv)


async def _run(
    path: Path | None,
    container: str | None,
    agent: str | None,
    extra: list[str],
    config: Path | None,
) -> int:
    from containai.cli import _options as options
    from containai.cli._session import bring_up, interactive, run_captured, run_terminal
    from containai.fsm._errors import UsageError
    from containai.orchestrator import open_orchestrator

    overrides = options.overrides(config=config, agent=agent)
    async with open_orchestrator() as orch:
        name = await bring_up(orch, path, container, overrides)
        chosen = agent or orch.status(name).agent or "claude"
        if chosen not in AGENTS:
            raise UsageError(f"unknown agent {chosen!r}; choose one of {', '.join(AGENTS)}")
        argv = AGENTS[chosen] + extra
        if interactive():
            return await run_terminal(orch, name, argv)
        return await run_captured(orch, name, argv)
