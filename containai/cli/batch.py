"""``cai batch FILE|- -- CMD...``: run a command (or an agent) across many repositories."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from containai.cli import _options
from containai.cli._app import run_async

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table

    from containai.orchestrator import Orchestrator
    from containai.orchestrator._batch import BatchItem, BatchResult


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
    board = _Board([item.key for item in todo], live=not json_)
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
            tg.start_soon(board.follow, orch)
            with board, results_path.open("ab") as sink:
                async for result in run_batch(
                    orch,
                    todo,
                    argv,
                    parallel=parallel,
                    run_dir=run_dir,
                    keep=keep,
                    progress=board.progress,
                ):
                    sink.write(encoder.encode(result) + b"\n")
                    sink.flush()
                    collected.append(result)
                    board.finish(result)
                    if json_:
                        ndjson(result)
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


class _Board:
    """The live table of a batch run (repo, state, elapsed, exit); plain lines when piped."""

    def __init__(self, keys: list[str], *, live: bool) -> None:
        from rich.console import Console

        self.console = Console()
        self.rows = {key: _Row() for key in keys}
        self.workspaces: dict[str, str] = {}
        self.live: Live | None = None
        if live and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, auto_refresh=False)
        self.plain = live and self.live is None

    def __enter__(self) -> _Board:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table(), refresh=True)
            self.live.stop()

    def progress(self, item: BatchItem, phase: str, workspace: str) -> None:
        row = self.rows[item.key]
        row.state = phase
        row.start = row.start or time.monotonic()
        if workspace:
            self.workspaces[workspace] = item.key
        self._draw()

    def finish(self, result: BatchResult) -> None:
        from containai.cli._render import duration

        row = self.rows[result.key]
        row.state = result.status
        row.end = time.monotonic()
        row.exit = "-" if result.exit_code is None else str(result.exit_code)
        if self.plain:
            print(
                f"{result.status:<6} exit={row.exit:<4} {duration(result.duration):>7}  "
                f"{result.key}" + (f"  {result.error}" if result.error else ""),
                flush=True,
            )
        self._draw()

    async def follow(self, orch: Orchestrator) -> None:
        """Machine states of the workspaces, and a once-a-second redraw for elapsed times."""
        import anyio

        async def tick() -> None:
            while True:
                await anyio.sleep(1)
                self._draw()

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            async with orch.subscribe() as records:
                async for record in records:
                    key = self.workspaces.get(record.workspace)
                    if key and self.rows[key].state in ("starting", *_STATES):
                        self.rows[key].state = record.to_state
                        self._draw()

    def _draw(self) -> None:
        if self.live is not None:
            self.live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        from rich.table import Table

        from containai.cli._render import duration

        table = Table(box=None, pad_edge=False)
        for column in ("REPO", "STATE", "ELAPSED", "EXIT"):
            table.add_column(column)
        now = time.monotonic()
        for key, row in self.rows.items():
            elapsed = duration((row.end or now) - row.start) if row.start else "-"
            style = {"ok": "green", "failed": "red", "error": "red"}.get(row.state, "yellow")
            table.add_row(key, f"[{style}]{row.state}[/]", elapsed, row.exit)
        return table


class _Row:
    def __init__(self) -> None:
        self.state = "queued"
        self.start = 0.0
        self.end = 0.0
        self.exit = "-"


_STATES = ("creating", "booting", "init-done", "sshd-ready", "attached")
