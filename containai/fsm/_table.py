"""The lifecycle of one workspace container, as data.

Theory of operation
-------------------
A :class:`~containai.fsm.ContainerFSM` is told facts (:mod:`._events`) and answers with
imperatives (:mod:`._effects`). It never reads a clock: every fact comes with ``now``, and the
machine exposes one absolute ``deadline`` that the driver turns into a cancel scope, feeding
``DeadlineExpired`` back in when it passes. Everything the machine may do is in this file; the
machine only looks things up here.

A new machine starts in ``CREATING`` and asks for ``CreateContainer``. Docker's facts move it
on (``ContainerCreated`` → ``StartContainer``, ``ContainerStarted`` → ``BOOTING``); console
markers move it to ``INIT_DONE``, where it starts the ``sshd`` probe; the probe's success makes
it ``SSHD_READY``. Sessions opened by the orchestrator make it ``ATTACHED`` until the last one
closes. A stop request goes through ``STOPPING`` to ``STOPPED``; ``ContainerDestroyed`` ends
the machine in ``REMOVED`` wherever it is.

Rule 1: the table is the whole truth. A (state, event type) pair found in ``TRANSITIONS`` or
    ``BRANCHES`` is legal; any other pair raises ``InvalidTransition`` and changes nothing
    (state, deadline, sessions, reason). A ``BRANCHES`` entry is tried in order and the first
    guard that holds wins; if none holds, that is illegal input too.

Rule 2: every state outside ``RESTING`` has a timeout in ``TIMEOUTS`` and at least one edge to
    ``FAILED``. ``DeadlineExpired`` fails the machine with "timed out in <state> after <n>s",
    except in the usable states, where the deadline is a liveness interval: it runs a
    ``liveness`` probe and re-arms. A ``DeadlineExpired`` fed before the deadline is rejected
    (a stale timer must never fail a fresh state). ``STOPPING``'s deadline is the stop timeout
    carried by ``StopRequested`` plus ``TIMEOUTS[STOPPING]`` as a margin.

Rule 3: facts that restate what the machine already knows are absorbed: a self-loop with no
    effects and no record. These are the console markers once init is done (both markers
    appear, and the probe may win the race against them), ``ContainerDied`` once the machine
    is ``STOPPED`` or ``FAILED`` (Docker sends ``oom`` then ``die``), ``SessionClosed`` after
    the container stopped (sessions end with their container), and late probe results or a
    repeated stop request while ``STOPPING``. Stale facts that fit nowhere are rejected, and
    the driver counts them.

Rule 4: effects are ``ON_ENTER[dest]`` when the state changes, then ``ON_EDGE[(source, event
    type)]`` whenever that edge is taken, then one ``Publish`` record when the state or the
    failure reason changed. A self-loop that changes nothing publishes nothing.

Holes closed beyond the first sketch of this table, and why:

- ``ProbeFailed`` is also how the driver reports a failed effect (``create``, ``start``,
  ``stop``), so ``CREATING`` fails on any of it, ``STOPPING`` only on a failed ``stop``, and the
  resting ``STOPPED``/``FAILED`` only on a failed ``start`` (the probes were cancelled on the way
  there, so any other probe result is stale). ``BOOTING`` runs no probe and rejects probe results.
- ``FAILED`` plus ``ContainerOOMKilled`` or a failed ``start`` stays ``FAILED`` with the new
  reason and publishes it (the reason is news even when the state is not).
- ``REMOVED`` accepts nothing at all, not even a second ``ContainerDestroyed``.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from containai.fsm._effects import (
    AnyEffect,
    CancelProbes,
    CreateContainer,
    RunProbe,
    StartContainer,
    StopContainer,
)
from containai.fsm._events import (
    ContainerCreated,
    ContainerDestroyed,
    ContainerDied,
    ContainerOOMKilled,
    ContainerStarted,
    DeadlineExpired,
    Event,
    InitDoneSeen,
    ProbeFailed,
    ProbeSucceeded,
    SessionClosed,
    SessionOpened,
    SshdReadySeen,
    StartRequested,
    StopRequested,
)
from containai.fsm._states import RESTING, State

if TYPE_CHECKING:
    from collections.abc import Callable

EventType = type[Event]
Key = tuple[State, EventType]

CREATING, BOOTING, INIT_DONE = State.CREATING, State.BOOTING, State.INIT_DONE
SSHD_READY, ATTACHED, STOPPING = State.SSHD_READY, State.ATTACHED, State.STOPPING
STOPPED, FAILED, REMOVED = State.STOPPED, State.FAILED, State.REMOVED

#: The states a stop request can come from: everything on the way up.
RUNNING: tuple[State, ...] = (CREATING, BOOTING, INIT_DONE, SSHD_READY, ATTACHED)

#: ``cause`` of the first record of a new machine (no event caused it: the orchestrator did).
CAUSE_NEW = "create-requested"
#: Stop timeout assumed by a machine restored into ``STOPPING`` (StopRequested's default).
DEFAULT_STOP_TIMEOUT = 10.0
OOM_REASON = "out of memory (OOM killed)"
#: Reason of a machine restored into ``FAILED`` when the caller knows no better one.
RESTORED_FAILED = "found failed when cai started"


class Guard(StrEnum):
    """A condition on the machine and the event. Values are how the docs print them."""

    NEW_SESSION = "session id not open yet"
    LAST_SESSION = "the last open session"
    OTHER_SESSIONS = "an open session, others remain"
    STOP_FAILED = "probe == 'stop'"
    START_FAILED = "probe == 'start'"


class Branch(NamedTuple):
    guard: Guard | None  # None: always holds (a fallback, listed last)
    dest: State


class FromEvent(NamedTuple):
    """An effect whose fields come from the event that caused the transition."""

    label: str
    build: Callable[[Event], AnyEffect]


EffectSpec = AnyEffect | FromEvent


def _stop_container(event: Event) -> AnyEffect:
    timeout = event.timeout if isinstance(event, StopRequested) else DEFAULT_STOP_TIMEOUT
    return StopContainer(timeout=timeout)


def _failures(*states: State) -> dict[Key, State]:
    """The failure edges every state on the way up shares."""
    edges: dict[Key, State] = {}
    for state in states:
        edges[state, ContainerDied] = FAILED
        edges[state, ContainerOOMKilled] = FAILED
        edges[state, ContainerDestroyed] = REMOVED
        edges[state, StopRequested] = STOPPING
    return edges


#: Unconditional edges: (source, event type) -> destination.
TRANSITIONS: dict[Key, State] = {
    **_failures(*RUNNING),
    # CREATING: Docker confirms creation, then the start.
    (CREATING, ContainerCreated): CREATING,
    (CREATING, ContainerStarted): BOOTING,
    (CREATING, ProbeFailed): FAILED,  # the create or start effect failed
    (CREATING, DeadlineExpired): FAILED,
    # BOOTING: systemd comes up; either marker means init is done (ssh.service requires it).
    (BOOTING, InitDoneSeen): INIT_DONE,
    (BOOTING, SshdReadySeen): INIT_DONE,
    (BOOTING, DeadlineExpired): FAILED,
    # INIT_DONE: the sshd probe decides.
    (INIT_DONE, InitDoneSeen): INIT_DONE,
    (INIT_DONE, SshdReadySeen): INIT_DONE,
    (INIT_DONE, ProbeSucceeded): SSHD_READY,
    (INIT_DONE, ProbeFailed): FAILED,
    (INIT_DONE, DeadlineExpired): FAILED,
    # SSHD_READY: usable; the deadline is the liveness interval.
    (SSHD_READY, SessionOpened): ATTACHED,
    (SSHD_READY, InitDoneSeen): SSHD_READY,
    (SSHD_READY, SshdReadySeen): SSHD_READY,
    (SSHD_READY, ProbeSucceeded): SSHD_READY,
    (SSHD_READY, ProbeFailed): FAILED,
    (SSHD_READY, DeadlineExpired): SSHD_READY,
    # ATTACHED: as SSHD_READY, with sessions counted by id (see BRANCHES).
    (ATTACHED, InitDoneSeen): ATTACHED,
    (ATTACHED, SshdReadySeen): ATTACHED,
    (ATTACHED, ProbeSucceeded): ATTACHED,
    (ATTACHED, ProbeFailed): FAILED,
    (ATTACHED, DeadlineExpired): ATTACHED,
    # STOPPING: waiting for Docker's die.
    (STOPPING, ContainerDied): STOPPED,
    (STOPPING, ContainerOOMKilled): FAILED,
    (STOPPING, ContainerDestroyed): REMOVED,
    (STOPPING, DeadlineExpired): FAILED,
    (STOPPING, StopRequested): STOPPING,
    (STOPPING, ProbeSucceeded): STOPPING,
    (STOPPING, SessionClosed): STOPPING,
    # STOPPED and FAILED rest until something starts or removes the container.
    (STOPPED, ContainerStarted): BOOTING,
    (STOPPED, StartRequested): STOPPED,
    (STOPPED, ContainerDied): STOPPED,
    (STOPPED, ContainerOOMKilled): FAILED,
    (STOPPED, ContainerDestroyed): REMOVED,
    (STOPPED, SessionClosed): STOPPED,
    (FAILED, ContainerStarted): BOOTING,
    (FAILED, StartRequested): FAILED,
    (FAILED, ContainerDied): FAILED,
    (FAILED, ContainerOOMKilled): FAILED,
    (FAILED, ContainerDestroyed): REMOVED,
    (FAILED, SessionClosed): FAILED,
    # REMOVED: terminal, accepts nothing.
}

#: Edges whose destination depends on the machine or the event: tried in order.
BRANCHES: dict[Key, tuple[Branch, ...]] = {
    (ATTACHED, SessionOpened): (Branch(Guard.NEW_SESSION, ATTACHED),),
    (ATTACHED, SessionClosed): (
        Branch(Guard.LAST_SESSION, SSHD_READY),
        Branch(Guard.OTHER_SESSIONS, ATTACHED),
    ),
    (STOPPING, ProbeFailed): (Branch(Guard.STOP_FAILED, FAILED), Branch(None, STOPPING)),
    (STOPPED, ProbeFailed): (Branch(Guard.START_FAILED, FAILED),),
    (FAILED, ProbeFailed): (Branch(Guard.START_FAILED, FAILED),),
}

#: Effects emitted when the state changes into the key.
ON_ENTER: dict[State, tuple[EffectSpec, ...]] = {
    CREATING: (CreateContainer(),),
    INIT_DONE: (RunProbe(probe="sshd"),),
    STOPPING: (CancelProbes(), FromEvent("StopContainer(timeout)", _stop_container)),
    FAILED: (CancelProbes(),),
    REMOVED: (CancelProbes(),),
}

#: Effects emitted whenever the edge is taken, whether or not the state changes.
ON_EDGE: dict[Key, tuple[EffectSpec, ...]] = {
    (CREATING, ContainerCreated): (StartContainer(),),
    (SSHD_READY, DeadlineExpired): (RunProbe(probe="liveness"),),
    (ATTACHED, DeadlineExpired): (RunProbe(probe="liveness"),),
    (STOPPED, StartRequested): (StartContainer(),),
    (FAILED, StartRequested): (StartContainer(),),
}

#: Seconds a state may last (math.inf: no deadline). Overridable per machine.
TIMEOUTS: dict[State, float] = {
    CREATING: 60.0,
    BOOTING: 60.0,
    INIT_DONE: 60.0,
    SSHD_READY: 300.0,  # liveness interval
    ATTACHED: 300.0,  # liveness interval
    STOPPING: 15.0,  # margin on top of the stop timeout
    **{state: math.inf for state in RESTING},
}


def failure_reason(event: Event, state: State, timeout: float) -> str:
    """The ``reason`` of an edge into ``FAILED`` taken on ``event`` from ``state``."""
    match event:
        case DeadlineExpired():
            return f"timed out in {state.value} after {timeout:g}s"
        case ContainerDied(exit_code=code):
            return f"container exited with code {code}"
        case ContainerOOMKilled():
            return OOM_REASON
        case ProbeFailed(probe=probe, reason=reason):
            return reason or f"{probe} probe failed"
    return type(event).__name__  # pragma: no cover - the table has no other failure edges


#: Self-loops on ``FAILED`` that replace the failure reason (and so publish a record).
RENEWS_REASON: frozenset[Key] = frozenset({(FAILED, ContainerOOMKilled), (FAILED, ProbeFailed)})


def holds(guard: Guard, event: Event, sessions: frozenset[str]) -> bool:
    """Whether ``guard`` holds for ``event`` given the open ``sessions``."""
    match guard, event:
        case Guard.NEW_SESSION, SessionOpened(session_id=sid):
            return sid not in sessions
        case Guard.LAST_SESSION, SessionClosed(session_id=sid):
            return sessions == {sid}
        case Guard.OTHER_SESSIONS, SessionClosed(session_id=sid):
            return sid in sessions and len(sessions) > 1
        case Guard.STOP_FAILED, ProbeFailed(probe=probe):
            return probe == "stop"
        case Guard.START_FAILED, ProbeFailed(probe=probe):
            return probe == "start"
    return False


def edges() -> list[tuple[State, EventType, Guard | None, State]]:
    """Every edge of the table as (source, event type, guard, destination), in table order."""
    out: list[tuple[State, EventType, Guard | None, State]] = []
    for (source, event), dest in TRANSITIONS.items():
        out.append((source, event, None, dest))
    for (source, event), branches in BRANCHES.items():
        out.extend((source, event, guard, dest) for guard, dest in branches)
    return out


__all__ = [
    "BRANCHES",
    "CAUSE_NEW",
    "ON_EDGE",
    "ON_ENTER",
    "RENEWS_REASON",
    "RESTORED_FAILED",
    "TIMEOUTS",
    "TRANSITIONS",
    "Branch",
    "EffectSpec",
    "FromEvent",
    "Guard",
    "edges",
    "failure_reason",
    "holds",
]
