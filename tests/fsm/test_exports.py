"""The curated surface of containai.fsm (STYLE rule 14): additions are deliberate."""

from __future__ import annotations

import containai.fsm

EXPECTED = {
    # machine and table
    "ContainerFSM", "TRANSITIONS", "BRANCHES", "ON_ENTER", "ON_EDGE", "TIMEOUTS",
    "Branch", "FromEvent", "Guard",
    # states
    "State", "RESTING", "USABLE", "PROGRESS",
    # events
    "Event", "AnyEvent", "ContainerCreated", "ContainerStarted", "ContainerDied",
    "ContainerOOMKilled", "ContainerDestroyed", "InitDoneSeen", "SshdReadySeen",
    "ProbeSucceeded", "ProbeFailed", "SessionOpened", "SessionClosed", "StartRequested",
    "StopRequested", "DeadlineExpired",
    # effects
    "Effect", "AnyEffect", "CreateContainer", "StartContainer", "RunProbe", "CancelProbes",
    "StopContainer", "Publish",
    # lifecycle records
    "Lifecycle", "Transition", "SCHEMA_VERSION",
    # errors
    "CaiError", "InvalidTransition", "ConfigError", "UsageError", "NeedsRoot", "ProbeError",
    "ProbeTimeout", "PortRangeExhausted", "NameCollision", "AmbiguousWorkspace", "ImageError",
    "BackendError", "DockerUnavailable", "DockerError", "ContainerGone", "SSHUnavailable",
    "HostKeyMismatch",
}  # fmt: skip


def test_exports_all_is_pinned() -> None:
    assert set(containai.fsm.__all__) == EXPECTED


def test_exports_all_names_resolve() -> None:
    for name in containai.fsm.__all__:
        assert getattr(containai.fsm, name) is not None
