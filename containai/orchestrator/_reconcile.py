"""Docker's truth turned into facts for the machines: event translation, the state a machine is
rebuilt in, and the correction that brings a machine back in line with what inspect shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from containai.fsm import State
from containai.fsm._events import (
    ContainerCreated,
    ContainerDestroyed,
    ContainerDied,
    ContainerOOMKilled,
    ContainerStarted,
    Event,
)

if TYPE_CHECKING:
    from containai.orchestrator._ports import ContainerView, DockerEvent

#: Docker statuses of a container whose processes exist.
LIVE = frozenset({"running", "restarting", "paused"})
#: Exit codes of a clean systemd shutdown (0; 130/143: its own exits on SIGINT/SIGTERM).
CLEAN_EXITS = frozenset({0, 130, 143})


def fact_of(event: DockerEvent) -> Event | None:
    """The machine's fact for one Docker event, or None for events that change nothing."""
    match event.action:
        case "create":
            return ContainerCreated(container_id=event.container_id)
        case "start":
            return ContainerStarted()
        case "die":
            return ContainerDied(exit_code=event.exit_code or 0)
        case "oom":
            return ContainerOOMKilled()
        case "destroy":
            return ContainerDestroyed()
    return None


def restored_state(view: ContainerView) -> tuple[State, str]:
    """The state (and failure reason) to rebuild a machine in from inspect. A live container
    restarts from booting: its console markers replay and its probe runs again."""
    if view.status in LIVE:
        return State.BOOTING, ""
    if view.oom_killed:
        return State.FAILED, "out of memory (OOM killed)"
    if view.status == "created" or view.exit_code in CLEAN_EXITS:
        return State.STOPPED, ""
    return State.FAILED, f"container exited with code {view.exit_code}"


def drift(state: State, view: ContainerView) -> Event | None:
    """The fact that reconciles a machine in ``state`` with the container as inspected now
    (an event missed while the stream was down), or None when they agree."""
    live = view.status in LIVE
    if live and state in (State.STOPPED, State.FAILED):
        return ContainerStarted()
    if not live and state not in (State.CREATING, State.STOPPED, State.FAILED, State.REMOVED):
        if view.oom_killed:
            return ContainerOOMKilled()
        return ContainerDied(exit_code=view.exit_code)
    return None
