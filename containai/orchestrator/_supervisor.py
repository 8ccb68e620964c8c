"""One supervisor per workspace container: it owns the container's state machine, feeds it the
facts that reach it (Docker events, console markers, probe results, requests, deadlines) and
carries out the effects the machine returns.

Error handling: a supervisor turns every :class:`CaiError` raised while carrying out an effect
into a fact for its machine (which then moves to ``failed`` with the reason), so one workspace
failing never cancels its siblings. Only bugs propagate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import msgspec

from containai._defaults import MARKER_INIT_DONE, MARKER_SSHD_READY
from containai.fsm import (
    PROGRESS,
    CancelProbes,
    ContainerFSM,
    CreateContainer,
    Publish,
    RunProbe,
    StartContainer,
    State,
    StopContainer,
)
from containai.fsm._errors import CaiError, ContainerGone, InvalidTransition
from containai.fsm._events import (
    ContainerDied,
    ContainerStarted,
    DeadlineExpired,
    Event,
    InitDoneSeen,
    ProbeFailed,
    ProbeSucceeded,
    SshdReadySeen,
    StartRequested,
)
from containai.fsm._lifecycle import Transition

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from containai.fsm import AnyEffect
    from containai.orchestrator._ports import ContainerView, DockerPort

INBOX_SIZE = 256
#: After these, an earlier full probe says nothing about the sshd now running.
_NEW_BOOT_OR_END = frozenset(
    {State.BOOTING.value, State.STOPPED.value, State.FAILED.value, State.REMOVED.value}
)


def _hint(name: str, reason: str) -> str:
    """What to look at next, for the failures a user can act on."""
    if reason.startswith("timed out") or "exited with code" in reason:
        return (
            f" (its console: `docker --context containai logs {name}`; "
            "`cai up --fresh` recreates it; see docs/troubleshooting.md)"
        )
    return ""


class WorkspaceFailed(CaiError):
    """A workspace ended ``failed`` (or vanished) while someone waited for it."""

    exit_code = 11


class Hooks(msgspec.Struct, frozen=True, kw_only=True):
    """What a supervisor needs from its orchestrator (kept narrow so tests can drive one alone)."""

    create: Callable[[Supervisor], Awaitable[None]]
    start: Callable[[Supervisor], Awaitable[None]]
    probe: Callable[[Supervisor, str, anyio.Event], Awaitable[None]]
    publish: Callable[[Supervisor, Transition], None]
    clock: Callable[[], float]


class Supervisor:
    """Drives one :class:`ContainerFSM`. Created by the orchestrator, run in its task group."""

    def __init__(
        self,
        *,
        name: str,
        workspace: str,
        fsm: ContainerFSM,
        docker: DockerPort,
        hooks: Hooks,
        initial_effects: list[AnyEffect] | None = None,
        quiet_until_settled: bool = False,
    ) -> None:
        self.name = name
        self.workspace = workspace
        self.fsm = fsm
        self.docker = docker
        self.hooks = hooks
        self.container_id = ""
        self.dropped = 0
        self.rejected = 0
        self._initial = list(initial_effects or [])
        # Rebuilt machines replay boot facts they already went through; say nothing until
        # they settle into a usable or resting state, so `cai events` shows news only.
        self._quiet = quiet_until_settled
        self._send: MemoryObjectSendStream[Event]
        self._receive: MemoryObjectReceiveStream[Event]
        self._send, self._receive = anyio.create_memory_object_stream[Event](INBOX_SIZE)
        self._changed = anyio.Event()
        self._probe_scope: anyio.CancelScope | None = None
        self._console_scope: anyio.CancelScope | None = None
        self._sshd_nudge = anyio.Event()
        self._tg: TaskGroup | None = None
        self.done = anyio.Event()
        self._starting = False
        # owned: this process brings the workspace up or uses it (full sshd probe: our key,
        # pinned host key, a real handshake); otherwise it only observes it (banner probe).
        self.owned = False
        self.verified = False  # a full probe succeeded in this process for the current boot
        self.key_injected = False  # our key is in the container's authorized_keys
        self.started_at: float | None = None  # unix time of the start event of this boot
        self.host_key = ""  # the host key printed with this boot's sshd-ready marker
        # What the orchestrator last learned about the container (for status and probes).
        self.view: ContainerView | None = None
        self.ssh_port: int | None = None
        self.since = time.time()
        self.image = ""
        self.labels: dict[str, str] = {}  # extra labels for the container to create
        self.warnings: list[str] = []

    # -- inputs -------------------------------------------------------------------------------
    def feed(self, event: Event) -> bool:
        """Queue a fact without blocking; False (and counted) when the inbox is full."""
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    async def changed(self) -> None:
        """Wait for the next state change (or the end of the supervisor)."""
        await self._changed.wait()

    def request_start(self, *, running: bool = False) -> None:
        """Start a stopped or failed container (or, when it still ``running``, take it up
        again from booting); waiters keep waiting until it started or the start itself
        failed, instead of giving up on the resting state it is leaving."""
        self._starting = True
        self.feed(ContainerStarted() if running else StartRequested())

    @property
    def sshd_nudge(self) -> anyio.Event:
        """Set once this boot's sshd-ready marker was seen."""
        return self._sshd_nudge

    @property
    def state(self) -> State:
        return self.fsm.state

    def reached(self, target: State) -> bool:
        state = self.fsm.state
        if target in PROGRESS and state in PROGRESS:
            return PROGRESS.index(state) >= PROGRESS.index(target)
        return state == target

    async def wait_for(self, target: State) -> State:
        """Wait until the machine reaches ``target`` (a later happy-path state counts).

        Raises:
            WorkspaceFailed: the machine ended ``failed`` or ``removed`` first.
        """
        while True:
            if self.reached(target):
                return self.fsm.state
            if self._starting and self.fsm.state in (State.STOPPED, State.FAILED):
                await self._changed.wait()
                continue
            if self.fsm.state in (State.FAILED, State.REMOVED) and target not in (
                State.FAILED,
                State.REMOVED,
            ):
                raise WorkspaceFailed(
                    f"{self.name}: {self.fsm.state.value}"
                    + (f": {self.fsm.reason}" if self.fsm.reason else "")
                    + _hint(self.name, self.fsm.reason),
                    container=self.name,
                )
            if self.fsm.state == State.STOPPED and target in PROGRESS:
                raise WorkspaceFailed(f"{self.name}: stopped", container=self.name)
            await self._changed.wait()

    # -- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self.fsm.state in (
                    State.BOOTING,
                    State.INIT_DONE,
                    State.SSHD_READY,
                    State.ATTACHED,
                ):
                    self._follow_console()
                await self._apply(self._initial)
                self._initial.clear()
                await self._loop()
                tg.cancel_scope.cancel()
        finally:
            self._send.close()
            self._receive.close()  # also when cancelled before the loop ever ran
            self.done.set()
            self._notify()

    async def _loop(self) -> None:
        async with self._receive:
            while self.fsm.state != State.REMOVED:
                event: Event
                with anyio.CancelScope(deadline=self._deadline()) as scope:
                    event = await self._receive.receive()
                if scope.cancelled_caught:
                    event = DeadlineExpired()
                await self._handle(event)

    def _deadline(self) -> float:
        deadline = self.fsm.deadline
        return deadline if deadline != math.inf else math.inf

    async def _handle(self, event: Event) -> None:
        if isinstance(event, SshdReadySeen):
            self._sshd_nudge.set()
        if isinstance(event, ContainerStarted) or (
            isinstance(event, ProbeFailed) and event.probe == "start"
        ):
            self._starting = False
            self._notify()
        try:
            effects = self.fsm.handle(event, self.hooks.clock())
        except InvalidTransition:
            # A stale or duplicate fact (e.g. replayed across an event-stream reconnect).
            # The machine is unchanged; count it and move on.
            self.rejected += 1
            return
        await self._apply(effects)

    async def _apply(self, effects: list[AnyEffect]) -> None:
        for effect in effects:
            match effect:
                case Publish(transition=transition):
                    self._on_transition(transition)
                case CreateContainer():
                    await self._guard(self.hooks.create(self), "create")
                case StartContainer():
                    await self._guard(self.hooks.start(self), "start")
                case RunProbe(probe=probe):
                    self._start_probe(probe)
                case CancelProbes():
                    self._cancel_probes()
                case StopContainer(timeout=timeout):
                    assert self._tg is not None
                    self._tg.start_soon(self._stop, timeout)

    def _on_transition(self, transition: Transition) -> None:
        if transition.to_state in _NEW_BOOT_OR_END:
            self.verified = False
            self.host_key = ""
        if transition.to_state == State.BOOTING.value:
            self._follow_console()
        if transition.to_state in (State.STOPPED.value, State.FAILED.value, State.REMOVED.value):
            self._stop_console()
        if self._quiet:
            # A rebuilt running machine replays booting -> init-done -> sshd-ready from its
            # console: not news. Anything else (it dies, stops, goes away) is, and ends the
            # replay, as does reaching where the container already was.
            if transition.to_state in (State.INIT_DONE.value, State.SSHD_READY.value):
                self._quiet = transition.to_state != State.SSHD_READY.value
                self._notify()
                return
            self._quiet = False
        self.hooks.publish(self, transition)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _guard(self, action: Awaitable[None], what: str) -> None:
        try:
            await action
        except CaiError as exc:
            self.feed(ProbeFailed(probe=what, reason=f"{what} failed: {exc}"))

    async def _stop(self, grace: float) -> None:
        try:
            await self.docker.stop(self.name, grace=grace)
        except ContainerGone:
            pass
        except CaiError as exc:
            self.feed(ProbeFailed(probe="stop", reason=f"stop failed: {exc}"))

    # -- probes -------------------------------------------------------------------------------
    def _start_probe(self, probe: str) -> None:
        assert self._tg is not None
        self._cancel_probes()
        scope = anyio.CancelScope()
        self._probe_scope = scope
        self._tg.start_soon(self._probe, probe, scope)

    def _cancel_probes(self) -> None:
        if self._probe_scope is not None:
            self._probe_scope.cancel()
            self._probe_scope = None

    async def _probe(self, probe: str, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await self.hooks.probe(self, probe, self._sshd_nudge)
            except CaiError as exc:
                self.feed(ProbeFailed(probe=probe, reason=str(exc)))
            else:
                self.feed(ProbeSucceeded(probe=probe))

    # -- console ------------------------------------------------------------------------------
    def _follow_console(self) -> None:
        if self._tg is None or self._console_scope is not None:
            return
        scope = anyio.CancelScope()
        self._console_scope = scope
        self._sshd_nudge = anyio.Event()
        self._tg.start_soon(self._console, scope)

    def _stop_console(self) -> None:
        if self._console_scope is not None:
            self._console_scope.cancel()
            self._console_scope = None

    async def _console(self, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                async with self.docker.console(self.name, since=self.started_at) as lines:
                    async for line in lines:
                        if MARKER_INIT_DONE in line:
                            self.feed(InitDoneSeen())
                        elif MARKER_SSHD_READY in line:
                            key = line.split(MARKER_SSHD_READY, 1)[1].strip()
                            if key.startswith(("ssh-", "ecdsa-")):
                                self.host_key = key
                            self.feed(SshdReadySeen())
            except CaiError:
                pass  # the container went away; its die/destroy event tells the machine
        if self._console_scope is scope:
            self._console_scope = None


__all__ = ["ContainerDied", "Hooks", "Supervisor", "WorkspaceFailed"]
