"""Inputs to the machine: past-tense facts. Tags are stable wire names."""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every input to :class:`~containai.fsm.ContainerFSM`."""


class ContainerCreated(Event, frozen=True, tag="container-created"):
    container_id: str


class ContainerStarted(Event, frozen=True, tag="container-started"):
    pass


class ContainerDied(Event, frozen=True, tag="container-died"):
    exit_code: int = 0


class ContainerOOMKilled(Event, frozen=True, tag="container-oom-killed"):
    pass


class ContainerDestroyed(Event, frozen=True, tag="container-destroyed"):
    pass


class InitDoneSeen(Event, frozen=True, tag="init-done-seen"):
    """The init-done marker line appeared on the container's console."""


class SshdReadySeen(Event, frozen=True, tag="sshd-ready-seen"):
    """The sshd-ready marker line appeared on the container's console."""


class ProbeSucceeded(Event, frozen=True, tag="probe-succeeded"):
    probe: str


class ProbeFailed(Event, frozen=True, tag="probe-failed"):
    probe: str
    reason: str


class SessionOpened(Event, frozen=True, tag="session-opened"):
    session_id: str


class SessionClosed(Event, frozen=True, tag="session-closed"):
    session_id: str


class StartRequested(Event, frozen=True, tag="start-requested"):
    pass


class StopRequested(Event, frozen=True, tag="stop-requested"):
    timeout: float = 10.0


class DeadlineExpired(Event, frozen=True, tag="deadline-expired"):
    pass


AnyEvent = (
    ContainerCreated
    | ContainerStarted
    | ContainerDied
    | ContainerOOMKilled
    | ContainerDestroyed
    | InitDoneSeen
    | SshdReadySeen
    | ProbeSucceeded
    | ProbeFailed
    | SessionOpened
    | SessionClosed
    | StartRequested
    | StopRequested
    | DeadlineExpired
)
