"""Snapshots the orchestrator hands out: one workspace's status, and its own counters."""

from __future__ import annotations

import msgspec


class WorkspaceStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One workspace as ``cai ps --json`` prints it. ``state`` is the machine's, not Docker's."""

    name: str
    workspace: str
    state: str
    reason: str = ""
    ssh_alias: str = ""
    ssh_port: int | None = None
    since: float = 0.0  # wall-clock time the current state was entered
    started_at: str = ""
    uptime: float = 0.0  # seconds the container has been running (0 when not running)
    runtime: str = ""
    image: str = ""
    memory: int = 0
    nano_cpus: int = 0
    data_volume: str = ""
    agent: str = ""
    warnings: tuple[str, ...] = ()


class Statistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one orchestrator (trio's ``statistics()`` convention)."""

    workspaces: int
    by_state: dict[str, int]
    docker_events: int
    events_dropped: int
    facts_rejected: int
    reconnects: int
    reconciles: int
    published: int
    subscribers: int


def docker_time(text: str) -> float:
    """Docker's RFC 3339 timestamps (nanosecond fractions, ``Z``) as unix seconds; 0 if unset."""
    from datetime import datetime

    if not text or text.startswith("0001-"):
        return 0.0
    head, _, rest = text.partition(".")
    fraction = ""
    zone = "+00:00"
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        fraction = "." + digits[:6]
        tail = rest[len(digits) :]
        zone = "+00:00" if tail in ("", "Z") else tail
    elif head.endswith("Z"):
        head = head[:-1]
    return datetime.fromisoformat(head + fraction + zone).timestamp()
