"""The states of one workspace container."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where one workspace container is in its life. Values are the wire names."""

    CREATING = "creating"
    BOOTING = "booting"
    INIT_DONE = "init-done"
    SSHD_READY = "sshd-ready"
    ATTACHED = "attached"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    REMOVED = "removed"


#: States with no deadline: nothing is in flight, the machine waits for a request or a fact.
RESTING: frozenset[State] = frozenset({State.STOPPED, State.FAILED, State.REMOVED})
#: States in which the workspace can be used over SSH.
USABLE: frozenset[State] = frozenset({State.SSHD_READY, State.ATTACHED})
#: The order of the happy path, used to answer "has it reached X yet?".
PROGRESS: tuple[State, ...] = (
    State.CREATING,
    State.BOOTING,
    State.INIT_DONE,
    State.SSHD_READY,
    State.ATTACHED,
)
