"""``cai events``: the live lifecycle stream, with replay from the journal."""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime

import typer

from containai.cli import _options
from containai.cli._app import run_async
from containai.fsm._errors import UsageError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, *, now: float | None = None) -> float:
    """``10m`` / ``2h`` / ``30s`` / ``1d`` ago, an ISO time, or unix seconds → unix seconds."""
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: use a duration (30s, 10m, 2h, 1d), an ISO time or unix seconds"
        ) from None
    return moment.timestamp() if moment.tzinfo else moment.astimezone().timestamp()


def parse_filters(filters: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in ("name", "state", "workspace"):
            raise UsageError(f"--filter {item!r}: use name=NAME, state=STATE or workspace=PATH")
        parsed[key] = value
    return parsed


def register(app: typer.Typer) -> None:
    @app.command()
    def events(
        json_: bool = _options.JSON,
        since: str = typer.Option(None, "--since", help="Replay from 10m / 2h / an ISO time."),
        filter_: list[str] = typer.Option(
            None, "--filter", "-f", help="name=…, state=…, workspace=…"
        ),
        follow: bool = typer.Option(True, "--follow/--no-follow", help="Keep streaming."),
    ) -> int:
        """Stream every lifecycle transition: time, workspace, container, from, to, cause."""
        start = parse_since(since) if since else None
        return run_async(_events, json_, start, parse_filters(filter_ or []), follow)


async def _events(json_: bool, since: float | None, filters: dict[str, str], follow: bool) -> int:
    import anyio

    from containai.cli._render import ndjson
    from containai.fsm._lifecycle import Transition
    from containai.orchestrator import Journal, open_orchestrator

    journal = Journal()
    seen: dict[tuple[str, str | None, str], float] = {}

    def show(record: Transition) -> None:
        key = (record.container, record.from_state, record.to_state)
        if abs(seen.get(key, -1e9) - record.time) < 5:
            return  # the same transition journaled by several cai processes
        seen[key] = record.time
        if "name" in filters and record.container != filters["name"]:
            return
        if "state" in filters and record.to_state != filters["state"]:
            return
        if "workspace" in filters and record.workspace != filters["workspace"]:
            return
        if json_:
            ndjson(record)
        else:
            stamp = datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:-3]
            print(
                f"{stamp} {record.container:<24} {record.from_state or '-':>10} -> "
                f"{record.to_state:<10} {record.cause} ({record.elapsed:.2f}s)"
                + (f" {record.reason}" if record.reason else ""),
                flush=True,
            )

    if since is not None:
        for record in journal.read(since=since):
            show(record)
    if not follow:
        return 0
    # A passive orchestrator observes the engine and journals what it sees (a `docker kill`
    # with no other cai running); the journal carries what other cai processes do.
    async with open_orchestrator():
        offset = journal.path.stat().st_size if journal.path.exists() else 0
        # On stderr, so NDJSON on stdout stays clean: from here on nothing is missed.
        print("following lifecycle events (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while True:
            await anyio.sleep(0.1)
            try:
                size = journal.path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offset:
                offset = 0  # rotated
            if size == offset:
                continue
            with journal.path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            complete = chunk.rfind(b"\n") + 1
            offset += complete
            for record in journal.decode_lines(chunk[:complete]):
                show(record)
