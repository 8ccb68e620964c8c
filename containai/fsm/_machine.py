"""The state machine of one workspace container: the table of :mod:`._table`, made executable.

``transitions`` is used here only, through :class:`_TableMachine`, the one typed wrapper around
its synchronous ``Machine``. One such machine serves every :class:`ContainerFSM`: the table is
the same for all, so the (slow) construction happens once, and each ``ContainerFSM`` is only a
model holding its state. Sharing is safe: an unqueued ``Machine`` keeps no per-call state, and
``handle`` never re-enters it. No model is registered with the machine, so ``transitions`` never
binds methods onto ours (``model_override=True`` says the same for anyone who would add one).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any, get_args

from transitions import Machine, MachineError

from containai.fsm._effects import AnyEffect, Publish
from containai.fsm._errors import ConfigError, InvalidTransition
from containai.fsm._events import (
    AnyEvent,
    DeadlineExpired,
    Event,
    SessionClosed,
    SessionOpened,
    StopRequested,
)
from containai.fsm._lifecycle import Transition
from containai.fsm._states import RESTING, USABLE, State
from containai.fsm._table import (
    CAUSE_NEW,
    DEFAULT_STOP_TIMEOUT,
    ON_EDGE,
    ON_ENTER,
    RENEWS_REASON,
    RESTORED_FAILED,
    TIMEOUTS,
    EffectSpec,
    FromEvent,
    Guard,
    edges,
    failure_reason,
    holds,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: Event type -> wire tag, which is also the trigger name in the transitions machine.
TAGS: dict[type[Event], str] = {cls: cls.__struct_config__.tag for cls in get_args(AnyEvent)}


class _TableMachine:
    """The typed face of ``transitions.Machine``: the only code here that sees ``Any``."""

    def __init__(self) -> None:
        self._machine: Any = Machine(
            model=None,
            states=State,
            initial=State.CREATING,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            model_override=True,
            send_event=True,  # conditions get EventData: the model and the event
            model_attribute="_state",
        )
        for source, event, guard, dest in edges():
            self._machine.add_transition(
                trigger=TAGS[event],
                source=source,
                dest=None if dest is source else dest,  # internal: no exit/enter
                conditions=None if guard is None else [partial(self._holds, guard)],
            )
        self._triggers: dict[str, Any] = dict(self._machine.events)

    def _holds(self, guard: Guard, data: Any) -> bool:
        fsm: ContainerFSM = data.model
        event: Event = data.args[0]
        return holds(guard, event, fsm.sessions)

    def fire(self, fsm: ContainerFSM, event: Event) -> State:
        """Move ``fsm`` along the table on ``event`` and return its new state.

        Raises:
            InvalidTransition: no edge for (state, event), or no guard held; nothing changed.
        """
        state = fsm.state
        tag = TAGS.get(type(event), type(event).__name__)
        trigger = self._triggers.get(tag)
        try:
            moved = trigger is not None and trigger.trigger(fsm, event)
        except MachineError:
            moved = False
        if not moved:
            guards = "" if trigger is None else _guards_of(state, type(event))
            raise InvalidTransition(
                f"{tag} is not accepted in state {state.value}{guards}",
                state=state.value,
                event=tag,
                container=fsm.container or None,
            )
        new: State = fsm._state
        return new


def _guards_of(state: State, event: type[Event]) -> str:
    guards = [g.value for s, e, g, _ in edges() if s is state and e is event and g is not None]
    return f" (none of: {'; '.join(guards)})" if guards else ""


_MACHINE = _TableMachine()


def _merged(timeouts: Mapping[State, float] | None) -> Mapping[State, float]:
    if not timeouts:
        return TIMEOUTS
    merged = dict(TIMEOUTS)
    for key, seconds in timeouts.items():
        state = State(key)
        if state in RESTING:
            raise ConfigError(f"state {state.value} has no deadline; it cannot take a timeout")
        if not seconds > 0:
            raise ConfigError(f"timeout for {state.value} must be positive, got {seconds!r}")
        merged[state] = float(seconds)
    return merged


def _build(specs: Iterable[EffectSpec], event: Event) -> list[AnyEffect]:
    return [spec.build(event) if isinstance(spec, FromEvent) else spec for spec in specs]


class ContainerFSM:
    """The lifecycle of one workspace container: events in, effects out, time as an input.

    Obtain one with :meth:`new` (a container cai is about to create) or :meth:`restore` (a
    container found in Docker). Feed it facts with :meth:`handle`; carry out the effects it
    returns in order. It never reads a clock and never does I/O.

    Attributes:
        workspace: the workspace path stamped on published records.
        container: the container name stamped on published records.
    """

    __slots__ = (
        "_armed_at",
        "_deadline",
        "_entered_at",
        "_grace",
        "_reason",
        "_sessions",
        "_state",
        "_timeouts",
        "container",
        "workspace",
    )

    def __init__(
        self,
        state: State,
        now: float,
        *,
        workspace: str = "",
        container: str = "",
        reason: str = "",
        timeouts: Mapping[State, float] | None = None,
    ) -> None:
        self._state = State(state)
        self._timeouts = _merged(timeouts)
        self._entered_at = now
        self._armed_at = now
        self._grace = DEFAULT_STOP_TIMEOUT
        self._reason = reason
        self._sessions: frozenset[str] = frozenset()
        self.workspace = workspace
        self.container = container
        self._deadline = now + self._timeout(self._state)

    @classmethod
    def new(
        cls,
        now: float,
        *,
        workspace: str = "",
        container: str = "",
        timeouts: Mapping[State, float] | None = None,
    ) -> tuple[ContainerFSM, list[AnyEffect]]:
        """A machine for a container that does not exist yet.

        Args:
            now: the driver's clock (the same one every later ``now`` comes from).
            workspace: stamped on published records.
            container: stamped on published records.
            timeouts: per-state seconds overriding :data:`TIMEOUTS` (for ``stopping``: the
                margin added to the stop timeout).

        Returns:
            The machine in ``creating`` and its first effects: ``CreateContainer`` and the
            ``Publish`` of its first record (``from_state`` ``None``).

        Raises:
            ConfigError: a timeout for a resting state, or one that is not positive.
        """
        fsm = cls(State.CREATING, now, workspace=workspace, container=container, timeouts=timeouts)
        record = fsm._record(None, State.CREATING, CAUSE_NEW, now)
        # No event caused it; CREATING's entry effects take nothing from one.
        effects = [spec for spec in ON_ENTER[State.CREATING] if not isinstance(spec, FromEvent)]
        effects.append(Publish(transition=record))
        return fsm, effects

    @classmethod
    def restore(
        cls,
        state: State,
        now: float,
        *,
        workspace: str = "",
        container: str = "",
        reason: str = "",
        timeouts: Mapping[State, float] | None = None,
    ) -> ContainerFSM:
        """A machine rebuilt from Docker's truth, e.g. after ``cai`` restarted (reconcile).

        A running container is restored to ``booting`` and its console markers replayed; an
        exited one to ``stopped`` or ``failed`` (with ``reason``, or a generic one: ``failed``
        always has a reason). The deadline of ``state`` starts at ``now``.
        Nothing is published: the state is not news.

        Raises:
            ValueError: ``state`` is ``attached`` (sessions belong to a process; they are not
                restored, so restore ``sshd-ready`` instead).
            ConfigError: as for :meth:`new`.
        """
        if state is State.ATTACHED:
            raise ValueError("sessions are not restored: restore sshd-ready instead of attached")
        if state is State.FAILED and not reason:
            reason = RESTORED_FAILED  # failed always says why
        return cls(
            state, now, workspace=workspace, container=container, reason=reason, timeouts=timeouts
        )

    # -- read-only view --------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def deadline(self) -> float:
        """When the current state times out, on the clock of ``now``; ``math.inf`` if never."""
        return self._deadline

    @property
    def reason(self) -> str:
        """Why the machine is in its state: the failure reason in ``failed``, else usually ""."""
        return self._reason

    @property
    def entered_at(self) -> float:
        return self._entered_at

    @property
    def sessions(self) -> frozenset[str]:
        """Ids of the open orchestrator-owned sessions (non-empty exactly when ``attached``)."""
        return self._sessions

    def __repr__(self) -> str:
        return f"<ContainerFSM {self.container or '?'} {self._state.value}>"

    # -- the one input ---------------------------------------------------------------------
    def handle(self, event: Event, now: float) -> list[AnyEffect]:
        """Take in one fact and return what to do about it.

        Args:
            event: a past-tense fact about the container.
            now: the driver's clock when the fact is handled.

        Returns:
            Effects to carry out in order; a state change ends with one ``Publish``.

        Raises:
            InvalidTransition: the current state does not accept ``event`` (or a
                ``DeadlineExpired`` came before the deadline). Nothing changed.
        """
        source = self._state
        if isinstance(event, DeadlineExpired) and now < self._deadline:
            armed = "no deadline is armed" if self._deadline == math.inf else "too early"
            raise InvalidTransition(
                f"deadline-expired is not accepted in state {source.value}: {armed}",
                state=source.value,
                event="deadline-expired",
                container=self.container or None,
            )
        dest = _MACHINE.fire(self, event)
        key = (source, type(event))
        changed = dest is not source
        reason = self._reason
        if dest is State.FAILED and (changed or key in RENEWS_REASON):
            reason = failure_reason(event, source, self._timeout(source))
        elif changed:
            reason = ""

        effects = _build(ON_ENTER.get(dest, ()), event) if changed else []
        if key in ON_EDGE:
            effects.extend(_build(ON_EDGE[key], event))
        if changed or reason != self._reason:
            self._reason = reason
            cause = TAGS[type(event)]
            effects.append(Publish(transition=self._record(source, dest, cause, now)))

        match event:
            case SessionOpened(session_id=sid):
                self._sessions = self._sessions | {sid}
            case SessionClosed(session_id=sid) if source is State.ATTACHED:
                self._sessions = self._sessions - {sid}
            case StopRequested(timeout=timeout) if changed:
                self._grace = timeout
        if dest not in USABLE:
            self._sessions = frozenset()
        if changed:
            self._entered_at = self._armed_at = now
        elif isinstance(event, DeadlineExpired):
            self._armed_at = now  # the liveness tick re-arms
        self._deadline = self._armed_at + self._timeout(dest)
        return effects

    # -- helpers ---------------------------------------------------------------------------
    def _timeout(self, state: State) -> float:
        seconds = self._timeouts.get(state, math.inf)
        return seconds + self._grace if state is State.STOPPING else seconds

    def _record(self, source: State | None, dest: State, cause: str, now: float) -> Transition:
        return Transition(
            workspace=self.workspace,
            container=self.container,
            from_state=None if source is None else source.value,
            to_state=dest.value,
            cause=cause,
            reason=self._reason,
            elapsed=max(0.0, float(now - self._entered_at)),
        )


__all__ = ["TAGS", "ContainerFSM"]
