"""Test helpers for the fsm: h11's ConnectionPair idea for one ContainerFSM.

Imported by the test modules beside it (pytest puts this directory on sys.path, since tests/
has no packages). Not collected: the name does not start with ``test_``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import get_args

import pytest

from containai.fsm import (
    AnyEffect,
    AnyEvent,
    ContainerCreated,
    ContainerDied,
    ContainerFSM,
    ContainerStarted,
    Event,
    InitDoneSeen,
    InvalidTransition,
    ProbeFailed,
    ProbeSucceeded,
    Publish,
    SessionClosed,
    SessionOpened,
    State,
    StopRequested,
    Transition,
)

WORKSPACE = "/src/app"
CONTAINER = "app-main"

EVENT_TYPES: tuple[type[Event], ...] = get_args(AnyEvent)

#: One instance of every event type, for tables that need "any event of this type".
SAMPLES: dict[type[Event], Event] = {
    cls: cls(**kwargs)
    for cls, kwargs in [
        (ContainerCreated, {"container_id": "c0ffee"}),
        (ProbeSucceeded, {"probe": "sshd"}),
        (ProbeFailed, {"probe": "sshd", "reason": "ssh handshake refused"}),
        (SessionOpened, {"session_id": "s-new"}),
        (SessionClosed, {"session_id": "s-unknown"}),
        (StopRequested, {"timeout": 5.0}),
        (ContainerDied, {"exit_code": 137}),
    ]
}
SAMPLES.update({cls: cls() for cls in EVENT_TYPES if cls not in SAMPLES})

#: The happy path from a new machine to sshd-ready: (event, now).
BOOT: list[tuple[Event, float]] = [
    (ContainerCreated(container_id="c0ffee"), 0.5),
    (ContainerStarted(), 2.0),
    (InitDoneSeen(), 6.0),
    (ProbeSucceeded(probe="sshd"), 6.25),
]

Snapshot = tuple[State, float, frozenset[str], str, float]


def snapshot(fsm: ContainerFSM) -> Snapshot:
    """Everything an illegal event must leave alone."""
    return (fsm.state, fsm.deadline, fsm.sessions, fsm.reason, fsm.entered_at)


def machine_in(
    state: State, now: float = 0.0, *, timeouts: Mapping[State, float] | None = None
) -> ContainerFSM:
    """A machine in ``state`` (``attached`` with one session, ``s-open``)."""
    if state is State.ATTACHED:
        fsm = machine_in(State.SSHD_READY, now, timeouts=timeouts)
        fsm.handle(SessionOpened(session_id="s-open"), now)
        return fsm
    return ContainerFSM.restore(
        state, now, workspace=WORKSPACE, container=CONTAINER, timeouts=timeouts
    )


def non_publish(effects: Iterable[AnyEffect]) -> list[AnyEffect]:
    return [e for e in effects if not isinstance(e, Publish)]


@dataclass
class Scenario:
    """Feeds a script of ``(event, now)`` to one machine and asserts on ``(state, effects)``.

    Every published record is kept in ``published`` (the first one of :meth:`new` included).
    """

    fsm: ContainerFSM
    published: list[Transition] = field(default_factory=list)

    @classmethod
    def new(cls, now: float = 0.0, *, timeouts: Mapping[State, float] | None = None) -> Scenario:
        fsm, effects = ContainerFSM.new(
            now, workspace=WORKSPACE, container=CONTAINER, timeouts=timeouts
        )
        scenario = cls(fsm)
        scenario._collect(effects)
        return scenario

    @classmethod
    def at(cls, state: State, now: float = 0.0) -> Scenario:
        return cls(machine_in(state, now))

    @property
    def state(self) -> State:
        return self.fsm.state

    def _collect(self, effects: list[AnyEffect]) -> None:
        self.published.extend(e.transition for e in effects if isinstance(e, Publish))

    def feed(self, event: Event, now: float) -> list[AnyEffect]:
        effects = self.fsm.handle(event, now)
        self._collect(effects)
        return effects

    def expect(
        self,
        event: Event,
        now: float,
        state: State,
        effects: list[AnyEffect] | None = None,
    ) -> list[AnyEffect]:
        """Feed one fact; assert the state and (if given) the effects other than Publish."""
        got = self.feed(event, now)
        assert self.fsm.state == state, (event, self.fsm.state, state)
        if effects is not None:
            assert non_publish(got) == effects, (event, got)
        return got

    def run(self, script: Iterable[tuple[Event, float]]) -> None:
        for event, now in script:
            self.feed(event, now)

    def rejects(self, event: Event, now: float) -> InvalidTransition:
        """Assert that ``event`` raises and changes nothing."""
        before = snapshot(self.fsm)
        with pytest.raises(InvalidTransition) as info:
            self.fsm.handle(event, now)
        assert snapshot(self.fsm) == before
        return info.value

    def last(self) -> Transition:
        return self.published[-1]
