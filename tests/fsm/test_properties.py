"""Random scripts of facts: the machine stays inside its table whatever arrives."""

from __future__ import annotations

import math

from fsm_scenario import machine_in, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from containai.fsm import (
    RESTING,
    USABLE,
    ContainerCreated,
    ContainerDestroyed,
    ContainerDied,
    ContainerFSM,
    ContainerOOMKilled,
    ContainerStarted,
    DeadlineExpired,
    Event,
    InitDoneSeen,
    InvalidTransition,
    ProbeFailed,
    ProbeSucceeded,
    Publish,
    SessionClosed,
    SessionOpened,
    SshdReadySeen,
    StartRequested,
    State,
    StopRequested,
)

session_ids = st.sampled_from(["a", "b", "c"])
probes = st.sampled_from(["sshd", "liveness", "create", "start", "stop"])

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(ContainerCreated, container_id=st.just("c0ffee")),
    st.builds(ContainerStarted),
    st.builds(ContainerDied, exit_code=st.integers(0, 255)),
    st.builds(ContainerOOMKilled),
    st.builds(ContainerDestroyed),
    st.builds(InitDoneSeen),
    st.builds(SshdReadySeen),
    st.builds(ProbeSucceeded, probe=probes),
    st.builds(ProbeFailed, probe=probes, reason=st.just("it broke")),
    st.builds(SessionOpened, session_id=session_ids),
    st.builds(SessionClosed, session_id=session_ids),
    st.builds(StartRequested),
    st.builds(StopRequested, timeout=st.floats(0, 30)),
    st.builds(DeadlineExpired),
)
# Time only moves forward; steps are small or large enough to pass any deadline.
steps = st.one_of(st.floats(0, 5), st.floats(50, 500))
scripts = st.lists(st.tuples(events, steps), max_size=60)


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from([None, *State]), script=scripts)
def test_fsm_random_scripts_stay_in_the_table(
    start: State | None, script: list[tuple[Event, float]]
) -> None:
    """Starting new or in any state (destroy ends most random scripts early otherwise)."""
    fsm = ContainerFSM.new(0.0)[0] if start is None else machine_in(start)
    now = 0.0
    for event, step in script:
        now += step
        before = snapshot(fsm)
        try:
            effects = fsm.handle(event, now)
        except InvalidTransition:
            assert snapshot(fsm) == before
            continue
        assert isinstance(fsm.state, State)
        # sessions exist exactly in attached; deadlines exactly outside the resting states
        assert (fsm.state is State.ATTACHED) == bool(fsm.sessions)
        assert fsm.sessions == frozenset() or fsm.state in USABLE
        assert (fsm.deadline == math.inf) == (fsm.state in RESTING)
        if fsm.state is not before[0] or isinstance(event, DeadlineExpired):
            assert fsm.deadline > now or fsm.state in RESTING  # a fresh timer is armed
        records = [e.transition for e in effects if isinstance(e, Publish)]
        assert len(records) <= 1
        if fsm.state is not before[0]:
            assert [(r.from_state, r.to_state) for r in records] == [
                (before[0].value, fsm.state.value)
            ]
        if fsm.state is State.FAILED:
            assert fsm.reason
        if before[0] is State.REMOVED:
            raise AssertionError("removed accepted an event")
