"""ContainerFSM run through scripts of (event, now): states, effects, records, deadlines."""

from __future__ import annotations

import math

import pytest
from fsm_scenario import (
    BOOT,
    CONTAINER,
    EVENT_TYPES,
    SAMPLES,
    WORKSPACE,
    Scenario,
    machine_in,
    non_publish,
    snapshot,
)

from containai.fsm import (
    BRANCHES,
    TIMEOUTS,
    TRANSITIONS,
    CancelProbes,
    ConfigError,
    ContainerCreated,
    ContainerDestroyed,
    ContainerDied,
    ContainerFSM,
    ContainerOOMKilled,
    ContainerStarted,
    CreateContainer,
    DeadlineExpired,
    Event,
    InitDoneSeen,
    InvalidTransition,
    ProbeFailed,
    ProbeSucceeded,
    Publish,
    RunProbe,
    SessionClosed,
    SessionOpened,
    SshdReadySeen,
    StartContainer,
    StartRequested,
    State,
    StopContainer,
    StopRequested,
    Transition,
)

# -- illegal input ---------------------------------------------------------------------------


def _illegal_pairs() -> list[tuple[State, Event]]:
    keys = set(TRANSITIONS) | set(BRANCHES)
    return [
        (state, SAMPLES[cls]) for state in State for cls in EVENT_TYPES if (state, cls) not in keys
    ]


#: Pairs in the table whose guards all fail for the given event.
GUARD_MISSES: list[tuple[State, Event]] = [
    (State.ATTACHED, SessionOpened(session_id="s-open")),  # already open
    (State.ATTACHED, SessionClosed(session_id="s-unknown")),
    (State.STOPPED, ProbeFailed(probe="sshd", reason="stale")),
    (State.FAILED, ProbeFailed(probe="liveness", reason="stale")),
]


@pytest.mark.parametrize(("state", "event"), _illegal_pairs(), ids=repr)
def test_handle_illegal_pair_raises_and_changes_nothing(state: State, event: Event) -> None:
    scenario = Scenario.at(state, now=1.0)
    error = scenario.rejects(event, now=1e9)
    assert error.state == state.value
    assert error.container == CONTAINER


@pytest.mark.parametrize(("state", "event"), GUARD_MISSES, ids=repr)
def test_handle_guard_miss_raises_and_changes_nothing(state: State, event: Event) -> None:
    error = Scenario.at(state, now=1.0).rejects(event, now=2.0)
    assert "none of" in error.message


@pytest.mark.parametrize("state", [s for s in State if (s, DeadlineExpired) in TRANSITIONS])
def test_handle_deadline_before_the_deadline_is_rejected(state: State) -> None:
    scenario = Scenario.at(state, now=10.0)
    scenario.rejects(DeadlineExpired(), now=scenario.fsm.deadline - 0.001)


def test_handle_illegal_pairs_cover_removed_entirely() -> None:
    removed = [event for state, event in _illegal_pairs() if state is State.REMOVED]
    assert len(removed) == len(EVENT_TYPES)


# -- the happy path --------------------------------------------------------------------------


class TestHappyPath:
    def test_new_starts_creating_and_asks_to_create(self) -> None:
        fsm, effects = ContainerFSM.new(100.0, workspace=WORKSPACE, container=CONTAINER)
        assert fsm.state is State.CREATING
        assert fsm.deadline == 100.0 + TIMEOUTS[State.CREATING]
        assert effects == [
            CreateContainer(),
            Publish(
                transition=Transition(
                    workspace=WORKSPACE,
                    container=CONTAINER,
                    from_state=None,
                    to_state="creating",
                    cause="create-requested",
                )
            ),
        ]

    def test_boot_effects_step_by_step(self) -> None:
        s = Scenario.new()
        s.expect(ContainerCreated(container_id="c0ffee"), 0.5, State.CREATING, [StartContainer()])
        s.expect(ContainerStarted(), 2.0, State.BOOTING, [])
        s.expect(InitDoneSeen(), 6.0, State.INIT_DONE, [RunProbe(probe="sshd")])
        s.expect(SshdReadySeen(), 6.1, State.INIT_DONE, [])
        s.expect(ProbeSucceeded(probe="sshd"), 6.25, State.SSHD_READY, [])

    def test_boot_publishes_one_record_per_change_with_elapsed(self) -> None:
        s = Scenario.new()
        s.run(BOOT)
        got = [(t.from_state, t.to_state, t.cause, t.elapsed) for t in s.published]
        assert got == [
            (None, "creating", "create-requested", 0.0),
            ("creating", "booting", "container-started", 2.0),
            ("booting", "init-done", "init-done-seen", 4.0),
            ("init-done", "sshd-ready", "probe-succeeded", 0.25),
        ]
        assert {(t.workspace, t.container, t.reason) for t in s.published} == {
            (WORKSPACE, CONTAINER, "")
        }

    def test_sshd_marker_alone_means_init_done(self) -> None:
        """ssh.service requires containai-init, so its marker implies init is done."""
        s = Scenario.at(State.BOOTING)
        s.expect(SshdReadySeen(), 1.0, State.INIT_DONE, [RunProbe(probe="sshd")])

    def test_deadline_follows_each_state(self) -> None:
        s = Scenario.new()
        s.run(BOOT[:2])
        assert s.fsm.deadline == 2.0 + TIMEOUTS[State.BOOTING]
        s.run(BOOT[2:])
        assert s.fsm.entered_at == 6.25
        assert s.fsm.deadline == 6.25 + TIMEOUTS[State.SSHD_READY]


# -- failures --------------------------------------------------------------------------------


class TestFailure:
    def test_died_while_booting_fails_with_exit_code(self) -> None:
        s = Scenario.new()
        s.run(BOOT[:2])
        s.expect(ContainerDied(exit_code=255), 3.0, State.FAILED, [CancelProbes()])
        assert s.fsm.reason == "container exited with code 255"
        assert s.last() == Transition(
            workspace=WORKSPACE,
            container=CONTAINER,
            from_state="booting",
            to_state="failed",
            cause="container-died",
            reason="container exited with code 255",
            elapsed=1.0,
        )
        assert s.fsm.deadline == math.inf

    def test_oom_fails_then_die_is_absorbed(self) -> None:
        s = Scenario.new()
        s.run(BOOT)
        s.expect(ContainerOOMKilled(), 10.0, State.FAILED)
        assert s.fsm.reason == "out of memory (OOM killed)"
        count = len(s.published)
        assert s.expect(ContainerDied(exit_code=137), 10.1, State.FAILED) == []
        assert len(s.published) == count
        assert s.fsm.reason == "out of memory (OOM killed)"

    def test_probe_failure_in_init_done_fails_with_its_reason(self) -> None:
        s = Scenario.at(State.INIT_DONE)
        s.expect(ProbeFailed(probe="sshd", reason="host key mismatch"), 1.0, State.FAILED)
        assert s.fsm.reason == "host key mismatch"

    @pytest.mark.parametrize("state", [State.CREATING, State.BOOTING, State.INIT_DONE])
    def test_deadline_expiry_on_the_way_up_fails(self, state: State) -> None:
        s = Scenario.at(state, now=5.0)
        s.expect(DeadlineExpired(), 5.0 + TIMEOUTS[state], State.FAILED, [CancelProbes()])
        assert s.fsm.reason == f"timed out in {state.value} after {TIMEOUTS[state]:g}s"
        assert s.last().cause == "deadline-expired"

    def test_timeouts_override_one_state(self) -> None:
        s = Scenario.new(timeouts={State.BOOTING: 0.5})
        s.run(BOOT[:2])
        assert s.fsm.deadline == 2.5
        s.expect(DeadlineExpired(), 2.5, State.FAILED)
        assert s.fsm.reason == "timed out in booting after 0.5s"

    @pytest.mark.parametrize("timeouts", [{State.FAILED: 5.0}, {State.BOOTING: 0.0}])
    def test_timeouts_invalid_override_is_a_config_error(self, timeouts: dict) -> None:
        with pytest.raises(ConfigError):
            ContainerFSM.new(0.0, timeouts=timeouts)

    def test_create_effect_failure_fails_creating(self) -> None:
        s = Scenario.new()
        s.expect(
            ProbeFailed(probe="create", reason="create failed: no such image"), 1, State.FAILED
        )
        assert s.fsm.reason == "create failed: no such image"

    def test_failed_start_after_failure_renews_the_reason(self) -> None:
        s = Scenario.at(State.FAILED)
        s.expect(ProbeFailed(probe="start", reason="start failed: port taken"), 1.0, State.FAILED)
        assert s.last().from_state == s.last().to_state == "failed"
        assert s.fsm.reason == "start failed: port taken"


# -- stop, restart, remove -------------------------------------------------------------------


class TestStop:
    def test_stop_while_booting(self) -> None:
        s = Scenario.new()
        s.run(BOOT[:2])
        s.expect(
            StopRequested(timeout=3.0),
            4.0,
            State.STOPPING,
            [CancelProbes(), StopContainer(timeout=3.0)],
        )
        assert s.fsm.deadline == 4.0 + 3.0 + TIMEOUTS[State.STOPPING]
        s.expect(ContainerDied(exit_code=0), 5.0, State.STOPPED, [])
        assert s.fsm.reason == ""
        assert s.fsm.deadline == math.inf

    def test_stop_that_never_ends_fails(self) -> None:
        s = Scenario.at(State.SSHD_READY)
        s.feed(StopRequested(timeout=2.0), 1.0)
        s.expect(DeadlineExpired(), 1.0 + 2.0 + 15.0, State.FAILED)
        assert s.fsm.reason == "timed out in stopping after 17s"

    def test_stopping_absorbs_stale_probe_results_and_repeats(self) -> None:
        s = Scenario.at(State.INIT_DONE)
        s.feed(StopRequested(), 1.0)
        for event in (
            ProbeFailed(probe="sshd", reason="cancelled"),
            ProbeSucceeded(probe="sshd"),
            StopRequested(timeout=1.0),
        ):
            assert s.expect(event, 2.0, State.STOPPING) == []
        s.expect(ProbeFailed(probe="stop", reason="stop failed: boom"), 3.0, State.FAILED)

    def test_restart_from_stopped(self) -> None:
        s = Scenario.at(State.STOPPED)
        s.expect(StartRequested(), 1.0, State.STOPPED, [StartContainer()])
        s.expect(ContainerStarted(), 2.0, State.BOOTING, [])
        s.run(BOOT[2:])
        assert s.state is State.SSHD_READY

    def test_restart_after_failure(self) -> None:
        s = Scenario.at(State.FAILED)
        s.expect(StartRequested(), 1.0, State.FAILED, [StartContainer()])
        s.expect(ContainerStarted(), 2.0, State.BOOTING)
        assert s.fsm.reason == ""

    @pytest.mark.parametrize("state", [s for s in State if s is not State.REMOVED])
    def test_destroy_from_any_state(self, state: State) -> None:
        s = Scenario.at(state)
        s.expect(ContainerDestroyed(), 1.0, State.REMOVED, [CancelProbes()])
        assert s.last().to_state == "removed"
        assert s.fsm.sessions == frozenset()
        assert s.fsm.deadline == math.inf


# -- sessions and liveness -------------------------------------------------------------------


class TestSessions:
    def test_attached_until_the_last_session_closes(self) -> None:
        s = Scenario.at(State.SSHD_READY)
        s.expect(SessionOpened(session_id="a"), 1.0, State.ATTACHED, [])
        s.expect(SessionOpened(session_id="b"), 2.0, State.ATTACHED, [])
        assert s.fsm.sessions == {"a", "b"}
        s.expect(SessionClosed(session_id="a"), 3.0, State.ATTACHED, [])
        s.expect(SessionClosed(session_id="b"), 4.0, State.SSHD_READY, [])
        assert s.fsm.sessions == frozenset()
        assert [(t.to_state, t.elapsed) for t in s.published] == [
            ("attached", 1.0),
            ("sshd-ready", 3.0),
        ]

    def test_session_close_after_stop_is_absorbed(self) -> None:
        s = Scenario.at(State.ATTACHED)
        s.feed(StopRequested(), 1.0)
        assert s.fsm.sessions == frozenset()
        s.feed(ContainerDied(), 2.0)
        assert s.expect(SessionClosed(session_id="s-open"), 3.0, State.STOPPED) == []

    @pytest.mark.parametrize("state", [State.SSHD_READY, State.ATTACHED])
    def test_liveness_tick_probes_and_rearms(self, state: State) -> None:
        s = Scenario.at(state, now=0.0)
        tick = TIMEOUTS[state]
        effects = s.expect(DeadlineExpired(), tick + 1, state, [RunProbe(probe="liveness")])
        assert non_publish(effects) == effects  # a tick is not news
        assert s.fsm.deadline == tick + 1 + tick
        assert s.fsm.entered_at == 0.0
        s.expect(ProbeSucceeded(probe="liveness"), tick + 2, state, [])

    def test_liveness_failure_fails(self) -> None:
        s = Scenario.at(State.ATTACHED)
        s.feed(DeadlineExpired(), 300.0)
        s.expect(ProbeFailed(probe="liveness", reason="sshd stopped answering"), 301, State.FAILED)
        assert s.fsm.sessions == frozenset()


# -- restore ---------------------------------------------------------------------------------


class TestRestore:
    def test_restore_running_boots_and_replays_markers(self) -> None:
        fsm = ContainerFSM.restore(State.BOOTING, 50.0, workspace=WORKSPACE, container=CONTAINER)
        assert fsm.deadline == 50.0 + TIMEOUTS[State.BOOTING]
        s = Scenario(fsm)
        s.expect(InitDoneSeen(), 50.1, State.INIT_DONE, [RunProbe(probe="sshd")])
        s.expect(SshdReadySeen(), 50.1, State.INIT_DONE, [])
        s.expect(ProbeSucceeded(probe="sshd"), 50.3, State.SSHD_READY)

    def test_restore_exited_keeps_reason_and_rests(self) -> None:
        fsm = ContainerFSM.restore(State.FAILED, 1.0, reason="out of memory (OOM killed)")
        assert (fsm.state, fsm.reason, fsm.deadline) == (
            State.FAILED,
            "out of memory (OOM killed)",
            math.inf,
        )

    def test_restore_failed_without_reason_still_says_why(self) -> None:
        assert ContainerFSM.restore(State.FAILED, 1.0).reason == "found failed when cai started"

    def test_restore_publishes_nothing_and_has_no_sessions(self) -> None:
        fsm = ContainerFSM.restore(State.STOPPED, 1.0)
        assert snapshot(fsm) == (State.STOPPED, math.inf, frozenset(), "", 1.0)

    def test_restore_attached_is_refused(self) -> None:
        with pytest.raises(ValueError, match="sessions"):
            ContainerFSM.restore(State.ATTACHED, 0.0)


def test_machine_in_helper_reaches_every_state() -> None:
    assert {machine_in(state).state for state in State} == set(State)


def test_invalid_transition_is_a_cai_error_with_context() -> None:
    with pytest.raises(InvalidTransition) as info:
        machine_in(State.REMOVED).handle(ContainerStarted(), 0.0)
    assert (info.value.state, info.value.event) == ("removed", "container-started")
    assert "container-started is not accepted in state removed" in str(info.value)
