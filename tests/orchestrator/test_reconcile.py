"""Docker's truth to machine facts: event translation, restore states, drift corrections."""

from __future__ import annotations

import pytest

from containai.fsm import State
from containai.fsm._events import (
    ContainerCreated,
    ContainerDestroyed,
    ContainerDied,
    ContainerOOMKilled,
    ContainerStarted,
)
from containai.orchestrator._ports import ContainerView, DockerEvent
from containai.orchestrator._reconcile import drift, fact_of, restored_state


def _view(status: str, exit_code: int = 0, oom: bool = False) -> ContainerView:
    return ContainerView(
        id="x", name="n", labels={}, status=status, exit_code=exit_code, oom_killed=oom
    )


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("create", ContainerCreated(container_id="abc")),
        ("start", ContainerStarted()),
        ("die", ContainerDied(exit_code=3)),
        ("oom", ContainerOOMKilled()),
        ("destroy", ContainerDestroyed()),
        ("exec_start", None),
        ("attach", None),
    ],
)
def test_fact_of_translates_container_actions(action: str, expected) -> None:
    event = DockerEvent(
        action=action, container_id="abc", name="n", labels={}, time_nano=1, exit_code=3
    )
    assert fact_of(event) == expected


@pytest.mark.parametrize(
    ("view", "state", "reason"),
    [
        (_view("running"), State.BOOTING, ""),
        (_view("exited", 0), State.STOPPED, ""),
        (_view("exited", 143), State.STOPPED, ""),
        (_view("created"), State.STOPPED, ""),
        (_view("exited", 137), State.FAILED, "container exited with code 137"),
        (_view("exited", 137, oom=True), State.FAILED, "out of memory (OOM killed)"),
    ],
)
def test_restored_state_follows_inspect(view, state, reason) -> None:
    assert restored_state(view) == (state, reason)


@pytest.mark.parametrize(
    ("state", "view", "expected"),
    [
        (State.SSHD_READY, _view("running"), None),
        (State.SSHD_READY, _view("exited", 9), ContainerDied(exit_code=9)),
        (State.BOOTING, _view("exited", 1, oom=True), ContainerOOMKilled()),
        (State.STOPPED, _view("running"), ContainerStarted()),
        (State.FAILED, _view("running"), ContainerStarted()),
        (State.STOPPED, _view("exited"), None),
        (State.CREATING, _view("created"), None),
    ],
)
def test_drift_is_the_fact_missed_while_the_stream_was_down(state, view, expected) -> None:
    assert drift(state, view) == expected
