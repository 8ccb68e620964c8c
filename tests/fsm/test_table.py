"""Invariants of the table itself (STYLE rule 5), checked on the data, not on a run."""

from __future__ import annotations

import math
from collections import deque

import pytest
from fsm_scenario import EVENT_TYPES

from containai.fsm import (
    BRANCHES,
    ON_EDGE,
    ON_ENTER,
    RESTING,
    TIMEOUTS,
    TRANSITIONS,
    USABLE,
    ContainerDestroyed,
    DeadlineExpired,
    RunProbe,
    State,
    StopContainer,
)
from containai.fsm._table import RENEWS_REASON, edges

NON_RESTING = [s for s in State if s not in RESTING]


def _successors(state: State) -> set[State]:
    return {dest for source, _event, _guard, dest in edges() if source is state}


@pytest.mark.parametrize("state", NON_RESTING)
def test_table_non_resting_state_has_a_finite_timeout(state: State) -> None:
    assert 0 < TIMEOUTS[state] < math.inf


@pytest.mark.parametrize("state", sorted(RESTING))
def test_table_resting_state_has_no_deadline(state: State) -> None:
    assert TIMEOUTS[state] == math.inf
    assert (state, DeadlineExpired) not in TRANSITIONS


@pytest.mark.parametrize("state", NON_RESTING)
def test_table_non_resting_state_has_a_failure_edge(state: State) -> None:
    assert State.FAILED in _successors(state)


@pytest.mark.parametrize("state", NON_RESTING)
def test_table_deadline_fails_or_checks_liveness(state: State) -> None:
    """Missing a deadline fails a state on the way up; in a usable state it runs a probe."""
    dest = TRANSITIONS[state, DeadlineExpired]
    if state in USABLE:
        assert dest is state
        assert ON_EDGE[state, DeadlineExpired] == (RunProbe(probe="liveness"),)
    else:
        assert dest is State.FAILED


def test_table_every_state_is_reachable_from_creating() -> None:
    seen = {State.CREATING}
    todo = deque(seen)
    while todo:
        for nxt in _successors(todo.popleft()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(State)


def test_table_removed_is_terminal() -> None:
    assert _successors(State.REMOVED) == set()


@pytest.mark.parametrize("state", [s for s in State if s is not State.REMOVED])
def test_table_destroyed_removes_from_every_state(state: State) -> None:
    assert TRANSITIONS[state, ContainerDestroyed] is State.REMOVED


def test_table_plain_and_branched_keys_are_disjoint() -> None:
    assert set(TRANSITIONS).isdisjoint(BRANCHES)


@pytest.mark.parametrize("key", list(BRANCHES))
def test_table_branch_fallback_only_last(key: tuple[State, type]) -> None:
    guards = [branch.guard for branch in BRANCHES[key]]
    assert None not in guards[:-1]


def test_table_effects_hang_on_existing_edges() -> None:
    keys = set(TRANSITIONS) | set(BRANCHES)
    assert set(ON_EDGE) <= keys
    assert RENEWS_REASON <= keys
    assert all(dest is State.FAILED for s, _e, _g, dest in edges() if (s, _e) in RENEWS_REASON)
    entered = {dest for _s, _e, _g, dest in edges()} | {State.CREATING}
    assert set(ON_ENTER) <= entered


def test_table_stopping_is_entered_with_a_stop() -> None:
    labels = [getattr(spec, "label", None) for spec in ON_ENTER[State.STOPPING]]
    assert any(label and label.startswith(StopContainer.__name__) for label in labels)


def test_table_every_event_type_is_used() -> None:
    used = {event for _s, event, _g, _d in edges()}
    assert used == set(EVENT_TYPES)


@pytest.mark.parametrize("state", list(State))
def test_table_timeouts_cover_every_state(state: State) -> None:
    assert state in TIMEOUTS
