"""Lifecycle records: what ``cai events --json`` prints, one per line.

The wire format is versioned by :data:`SCHEMA_VERSION`; docs/events.md documents it. The machine
fills in what it knows (states, cause, reason, time spent); the orchestrator stamps wall-clock
time, workspace and container with :func:`msgspec.structs.replace` before publishing.
"""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1


class Lifecycle(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every record on the lifecycle stream."""

    v: int = SCHEMA_VERSION
    time: float = 0.0
    workspace: str = ""
    container: str = ""


class Transition(Lifecycle, frozen=True, tag="transition"):
    """One state change of one workspace container.

    Attributes:
        from_state: the state left (``None`` for the first record of a new machine).
        to_state: the state entered.
        cause: the tag of the event that caused it (e.g. ``container-started``).
        reason: human-readable detail; always set when ``to_state`` is ``failed``.
        elapsed: seconds spent in ``from_state``.
    """

    from_state: str | None
    to_state: str
    cause: str
    reason: str = ""
    elapsed: float = 0.0


AnyLifecycle = Transition
