"""``cai batch FILE|- -- CMD...``: run a command (or an agent) across many repositories."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from containai.cli import _options
from containai.cli._app import run_async


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def batch(
        file: str = typer.Argument(
            ..., help="File with one repo per line (path or git URL[@branch]); - for stdin."
        ),
        command: list[str] = typer.Argument(None, help="-- CMD ARGS... (default: the agent)."),
        parallel: int = typer.Option(4, "--parallel", "-j", help="Repos in flight at once."),
        agent: str = typer.Option(None, "--agent", help="Run this agent CLI instead of CMD."),
        keep: bool = typer.Option(False, "--keep", help="Keep workspaces after their run."),
        results: Path = typer.Option(
            None, "--results", help="Results NDJSON (default: RUN_DIR/results.ndjson)."
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Skip repos already completed in --results."
        ),
        run_dir: Path = typer.Option(None, "--run-dir", help="Where clones and logs go."),
        json_: bool = _options.JSON,
    ) -> int:
        """Run CMD in a fresh workspace per repository; a live table, results NDJSON, logs."""
        from containai.cli.shell import AGENTS
        from containai.fsm._errors import UsageError

        if agent:
            if agent not in AGENTS:
                raise UsageError(f"unknown agent {agent!r}; choose one of {', '.join(AGENTS)}")
            argv = AGENTS[agent] + list(command or [])
        elif command:
            argv = list(command)
        else:
            raise UsageError("give a command after -- or --agent NAME")
        text = sys.stdin.read() if file == "-" else _read(Path(file))
        directory = run_dir or Path.cwd() / ".cai-batch" / time.strftime("%Y%m%d-%H%M%S")
        return run_async(
            _batch, text, argv, parallel, keep, results, resume, directory.resolve(), json_
        )


def _read(path: Path) -> str:
    from containai.fsm._errors import UsageError

    try:
        return path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read batch file {path}: {exc.strerror}") from None


async def _batch(
    text: str,
    argv: list[str],
    parallel: int,
    keep: bool,
    results: Path | None,
    resume: bool,
    run_dir: Path,
    json_: bool,
) -> int:
    import signal

    import anyio
    import msgspec

    from containai.cli._render import duration, ndjson
    from containai.orchestrator import open_orchestrator
    from containai.orchestrator._batch import BatchResult, parse_batch, run_batch

    items, bad = parse_batch(text)
    for error in bad:
        print(f"line {error.line}: {error.message}", file=sys.stderr)
    results_path = results or run_dir / "results.ndjson"
    done: set[str] = set()
    if resume and results_path.exists():
        decoder = msgspec.json.Decoder(BatchResult)
        for raw in results_path.read_bytes().splitlines():
            try:
                record = decoder.decode(raw)
            except msgspec.DecodeError:
                continue
            if record.status in ("ok", "failed"):
                done.add(record.key)
    todo = [item for item in items if item.key not in done]
    if done:
        print(f"resuming: {len(items) - len(todo)} done, {len(todo)} to run", file=sys.stderr)
    run_dir.mkdir(parents=True, exist_ok=True)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    collected: list[BatchResult] = []
    interrupted = False
    encoder = msgspec.json.Encoder()
    async with open_orchestrator(parallel=max(parallel, 1)) as orch:
        async with anyio.create_task_group() as tg:

            async def watch_signals() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        print("interrupted: stopping workspaces…", file=sys.stderr)
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch_signals)
            with results_path.open("ab") as sink:
                async for result in run_batch(
                    orch, todo, argv, parallel=parallel, run_dir=run_dir, keep=keep
                ):
                    sink.write(encoder.encode(result) + b"\n")
                    sink.flush()
                    collected.append(result)
                    if json_:
                        ndjson(result)
                    else:
                        code = "-" if result.exit_code is None else str(result.exit_code)
                        print(
                            f"{result.status:<6} exit={code:<4} {duration(result.duration):>7}  "
                            f"{result.key}" + (f"  {result.error}" if result.error else ""),
                            flush=True,
                        )
            tg.cancel_scope.cancel()
    counts = {s: sum(1 for r in collected if r.status == s) for s in ("ok", "failed", "error")}
    slowest = max(collected, key=lambda r: r.duration, default=None)
    summary = f"ok {counts['ok']} / failed {counts['failed']} / error {counts['error']}"
    if slowest is not None:
        summary += f"; slowest {slowest.key} ({duration(slowest.duration)})"
    print(summary + f"; results in {results_path}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if counts["failed"] or counts["error"] or bad else 0
