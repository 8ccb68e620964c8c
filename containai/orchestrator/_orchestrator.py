"""The orchestrator: one anyio task group, one Docker event subscription for every managed
container, one supervisor per container, a capacity limiter for parallel bring-up.

Theory of operation. Docker is the source of truth and events are the trigger, never the only
record. On start and on every reconnect of the event stream, the orchestrator first subscribes
(the stream is entered only once the engine answered), then lists managed containers and
rebuilds or corrects each machine from what it sees (reconcile). Events carry a ``since``
cursor so a reconnect replays what happened while the stream was down; replayed facts that a
machine has already seen are rejected by it and counted, never applied twice.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import anyio
import msgspec

from containai._defaults import (
    DATA_MOUNT,
    IMAGE_LAYERS,
    LABEL_DATA_VOLUME,
    LABEL_TEMPLATE_HASH,
    LABEL_WORKSPACE,
    SSH_HOST_PREFIX,
    SSH_PORT_RANGE,
    WORKSPACE_MOUNT,
    config_home,
    image_ref,
    state_home,
)
from containai.fsm import ContainerFSM, State
from containai.fsm._errors import (
    AmbiguousWorkspace,
    CaiError,
    ContainerGone,
    DockerError,
    DockerUnavailable,
    ImageError,
    NameCollision,
    PortRangeExhausted,
    UsageError,
)
from containai.fsm._events import (
    ContainerCreated,
    ContainerDestroyed,
    ContainerStarted,
    SessionClosed,
    SessionOpened,
    StopRequested,
)
from containai.fsm._lifecycle import Transition
from containai.orchestrator import _sessions, _sshfiles
from containai.orchestrator._backoff import Backoff
from containai.orchestrator._journal import Journal
from containai.orchestrator._ports import CreateSpec, SSHTarget
from containai.orchestrator._readiness import Readiness
from containai.orchestrator._reconcile import drift, fact_of, restored_state
from containai.orchestrator._runtime import host_config
from containai.orchestrator._status import Statistics, WorkspaceStatus, docker_time
from containai.orchestrator._supervisor import Hooks, Supervisor
from containai.orchestrator._templates import Template, ensure_template_image, load_template

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from containai.fsm import AnyEffect
    from containai.model import Overrides, WorkspaceSpec
    from containai.orchestrator._batch import BatchItem, BatchResult
    from containai.orchestrator._images import ImagePort
    from containai.orchestrator._ports import (
        ContainerView,
        DockerEvent,
        DockerPort,
        EngineInfo,
        SSHPort,
    )


def default_parallel() -> int:
    """Bring-up concurrency for this host: two per core, at least 4 (boots mostly wait)."""
    return max(4, 2 * (os.cpu_count() or 2))


class Orchestrator:
    """Brings workspaces up and down and tells what happens to them.

    Obtain one with :func:`open_orchestrator`; it lives as long as that context.
    """

    def __init__(
        self,
        tg: TaskGroup,
        docker: DockerPort,
        ssh: SSHPort,
        *,
        client_key: Callable[[], Awaitable[str]],
        key_path: Path,
        parallel: int,
        jitter: float,
        journal: Journal | None,
        engine: str,
        timeouts: Mapping[State, float] | None = None,
        images: ImagePort | None = None,
    ) -> None:
        self._tg = tg
        self.docker = docker
        self.ssh = ssh
        self.readiness = Readiness(docker, ssh, client_key=client_key, key_path=key_path)
        self.key_path = key_path
        self.limiter = anyio.CapacityLimiter(parallel)
        self._jitter = jitter
        self._journal = journal
        self.engine = engine
        self._supervisors: dict[str, Supervisor] = {}
        self._specs: dict[str, WorkspaceSpec] = {}
        self._subscribers: set[MemoryObjectSendStream[Transition]] = set()
        self._claim = anyio.Lock()
        self._since: int | None = None
        self._reconcile_needed = anyio.Event()
        self._counts = {
            "events": 0,
            "reconnects": 0,
            "reconciles": 0,
            "published": 0,
            "sub_dropped": 0,
        }
        self._info: EngineInfo | None = None
        self._info_lock = anyio.Lock()
        self._timeouts = dict(timeouts) if timeouts else None
        self._images = images
        self._image: str | None = None

    # -- public API ---------------------------------------------------------------------------
    async def up(
        self,
        path: str | os.PathLike[str],
        *,
        overrides: Overrides | None = None,
        fresh: bool = False,
        reset: bool = False,
        image: str | None = None,
        template: str | None = None,
    ) -> WorkspaceStatus:
        """Bring the workspace at ``path`` up to ``sshd-ready`` (reusing its container).

        Args:
            fresh: remove and recreate the container; the data volume is kept.
            reset: like ``fresh``, on a new, empty data volume (the old one is kept).
            image: the image for a new container (default: the cai base image).
            template: build new containers from ``~/.config/containai/templates/NAME``.

        Raises:
            WorkspaceFailed: the workspace ended ``failed``; the message holds the reason.
            ConfigError: the workspace, its configuration or its template is invalid.
        """
        from containai.model import resolve_workspace

        if self._info is None:  # ask the engine while the workspace resolves
            self._tg.start_soon(self._prefetch_engine_info)
        spec = await anyio.to_thread.run_sync(resolve_workspace, path, overrides)
        if reset:
            from containai.model import git_branch, reset_volume_name

            branch = await anyio.to_thread.run_sync(git_branch, Path(spec.path))
            volume = reset_volume_name(Path(spec.path).name, branch, time.time_ns())
            spec = msgspec.structs.replace(spec, data_volume=volume)
            fresh = True
        chosen: Template | None = None
        if template and template != "default":
            chosen = await anyio.to_thread.run_sync(load_template, template)
            image = await self._template_image(chosen)
        async with self.limiter:
            if self._jitter:
                await anyio.sleep(random.uniform(0, self._jitter))
            sup = await self._ensure(spec, fresh=fresh, image=image, template=chosen)
            await self._own(sup)
        return self.status(sup.name)

    async def _template_image(self, template: Template) -> str:
        if self._images is not None:
            return await ensure_template_image(self._images, template)
        from containai.orchestrator.adapters._docker_build import open_image_port

        async with open_image_port(self.engine) as images:
            return await ensure_template_image(images, template)

    async def wait(self, workspace: str, state: str | State = State.SSHD_READY) -> WorkspaceStatus:
        """Wait until ``workspace`` (a path or container name) reaches ``state``."""
        sup = self._find(workspace)
        await sup.wait_for(State(state))
        return self.status(sup.name)

    async def stop(self, workspace: str, *, grace: float = 10.0) -> WorkspaceStatus:
        """Stop gracefully (systemd's SIGRTMIN+3), killing after ``grace`` seconds."""
        sup = self._find(workspace)
        if sup.state in (State.STOPPED, State.REMOVED):
            return self.status(sup.name)
        if sup.state == State.FAILED:
            # The machine gave up on it, but the container may still run: stop it anyway.
            try:
                await self.docker.stop(sup.name, grace=grace)
            except ContainerGone:
                pass
            return self.status(sup.name)
        sup.feed(StopRequested(timeout=grace))
        await sup.wait_for(State.STOPPED)
        return self.status(sup.name)

    async def remove(self, workspace: str, *, volumes: bool = False) -> None:
        """Remove the container (stopping it first if needed) and its SSH entries.

        The data volume is kept unless ``volumes``; a volume still used by another workspace
        is never removed.
        """
        sup = self._find(workspace)
        volume = self._specs[sup.name].data_volume if sup.name in self._specs else ""
        view: ContainerView | None = None
        try:
            view = await self.docker.inspect(sup.name)
            volume = view.labels.get(LABEL_DATA_VOLUME, volume)
            await self.docker.remove(sup.name)
        except ContainerGone:
            pass
        with anyio.move_on_after(10):
            await sup.wait_for(State.REMOVED)
        await anyio.to_thread.run_sync(
            self.readiness.forget, sup.name, view.ssh_port if view else None
        )
        _sessions.forget(sup.name)
        if volumes and volume:
            users = [
                v.name
                for v in await self.docker.list_managed()
                if v.labels.get(LABEL_DATA_VOLUME) == volume
            ]
            if users:
                raise UsageError(
                    f"data volume {volume} is still used by {', '.join(sorted(users))}; "
                    "remove those workspaces first or keep the volume"
                )
            try:
                await self.docker.remove_volume(volume)
            except ContainerGone:
                pass

    def status(self, workspace: str) -> WorkspaceStatus:
        sup = self._find(workspace)
        spec = self._specs.get(sup.name)
        view = sup.view
        state = sup.state.value
        if sup.state == State.SSHD_READY and _sessions.open_sessions(sup.name):
            state = State.ATTACHED.value  # a session another cai process holds
        return WorkspaceStatus(
            name=sup.name,
            workspace=sup.workspace,
            state=state,
            reason=sup.fsm.reason or "",
            ssh_alias=f"{SSH_HOST_PREFIX}{sup.name}",
            ssh_port=sup.ssh_port,
            since=sup.since,
            started_at=view.started_at if view else "",
            uptime=max(0.0, time.time() - docker_time(view.started_at))
            if view and view.status == "running" and view.started_at
            else 0.0,
            runtime=view.runtime if view else "",
            image=view.image if view else "",
            memory=view.memory if view else (spec.memory if spec else 0),
            nano_cpus=view.nano_cpus if view else (spec.nano_cpus if spec else 0),
            data_volume=(view.labels.get(LABEL_DATA_VOLUME, "") if view else "")
            or (spec.data_volume if spec else ""),
            agent=spec.agent if spec else "",
            warnings=tuple(sup.warnings),
        )

    def workspaces(self) -> list[WorkspaceStatus]:
        return sorted(
            (
                self.status(name)
                for name, s in self._supervisors.items()
                if s.state != State.REMOVED
            ),
            key=lambda w: w.name,
        )

    async def settled(self, *, within: float = 10.0) -> None:
        """Wait (bounded) until no workspace is in a transient state; used by ``cai ps``."""
        with anyio.move_on_after(within):
            for sup in list(self._supervisors.values()):
                while sup.state in (State.CREATING, State.BOOTING, State.INIT_DONE, State.STOPPING):
                    await sup.changed()

    @asynccontextmanager
    async def subscribe(
        self, size: int = 1024
    ) -> AsyncIterator[MemoryObjectReceiveStream[Transition]]:
        """Every transition of every workspace from now on, on a bounded stream. A subscriber
        that falls ``size`` records behind loses records (counted in ``statistics()``)."""
        send, receive = anyio.create_memory_object_stream[Transition](size)
        self._subscribers.add(send)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    async def events(self) -> AsyncIterator[Transition]:
        """Every transition of every workspace from now on, as it happens. Wrap in
        ``contextlib.aclosing`` when leaving the loop early, or use :meth:`subscribe`."""
        async with self.subscribe() as records:
            async for record in records:
                yield record

    async def batch(
        self,
        repos: Iterable[str | BatchItem],
        command: Sequence[str],
        *,
        parallel: int = 4,
        run_dir: Path | None = None,
        keep: bool = False,
    ) -> AsyncIterator[BatchResult]:
        """Run ``command`` in a fresh workspace per repository (a path or git URL, with an
        optional ``@branch``); yield each result as soon as it finishes.

        Raises:
            UsageError: an entry is neither an existing directory nor a git URL.

        Cancellation: stops new starts; workspaces already made are stopped and removed
        (shielded) unless ``keep``.
        """
        from containai.orchestrator._batch import BatchItem, parse_batch, run_batch

        given = list(repos)
        items = [r for r in given if isinstance(r, BatchItem)]
        parsed, bad = parse_batch("\n".join(r for r in given if isinstance(r, str)))
        if bad:
            raise UsageError("; ".join(f"{e.text.strip()}: {e.message}" for e in bad))
        directory = run_dir or state_home() / "batch" / time.strftime("%Y%m%d-%H%M%S")
        async for result in run_batch(
            self, [*items, *parsed], list(command), parallel=parallel, run_dir=directory, keep=keep
        ):
            yield result

    @asynccontextmanager
    async def session(self, workspace: str) -> AsyncIterator[SSHTarget]:
        """Hold an orchestrator-owned SSH session: the workspace is ``attached`` meanwhile."""
        sup = self._find(workspace)
        await self._own(sup)
        session_id = f"{random.getrandbits(32):08x}"
        marker = _sessions.open_marker(sup.name, session_id)
        sup.feed(SessionOpened(session_id=f"{os.getpid()}-{session_id}"))
        try:
            yield self.target(sup.name)
        finally:
            sup.feed(SessionClosed(session_id=f"{os.getpid()}-{session_id}"))
            _sessions.close_marker(marker)

    def target(self, workspace: str) -> SSHTarget:
        sup = self._find(workspace)
        spec = self._specs.get(sup.name)
        return self.readiness.target(sup, forward_agent=spec.forward_agent if spec else False)

    def statistics(self) -> Statistics:
        by_state: dict[str, int] = {}
        for sup in self._supervisors.values():
            by_state[sup.state.value] = by_state.get(sup.state.value, 0) + 1
        return Statistics(
            workspaces=len(self._supervisors),
            by_state=by_state,
            docker_events=self._counts["events"],
            events_dropped=sum(s.dropped for s in self._supervisors.values())
            + self._counts["sub_dropped"],
            facts_rejected=sum(s.rejected for s in self._supervisors.values()),
            reconnects=self._counts["reconnects"],
            reconciles=self._counts["reconciles"],
            published=self._counts["published"],
            subscribers=len(self._subscribers),
        )

    # -- lookup -------------------------------------------------------------------------------
    def _find(self, workspace: str) -> Supervisor:
        if workspace in self._supervisors:
            return self._supervisors[workspace]
        path = str(Path(workspace).resolve()) if os.path.exists(workspace) else workspace
        found = [
            s
            for s in self._supervisors.values()
            if s.workspace == path and s.state != State.REMOVED
        ]
        if len(found) > 1:
            names = ", ".join(sorted(s.name for s in found))
            raise AmbiguousWorkspace(
                f"several containers belong to {path} ({names}); pass --container NAME"
            )
        if not found:
            raise ContainerGone(f"no workspace container for {workspace}; run `cai up {workspace}`")
        return found[0]

    # -- bring-up -----------------------------------------------------------------------------
    async def _ensure(
        self,
        spec: WorkspaceSpec,
        *,
        fresh: bool,
        image: str | None,
        template: Template | None = None,
    ) -> Supervisor:
        async with self._claim:
            mine = [
                s
                for s in self._supervisors.values()
                if s.workspace == spec.path and s.state != State.REMOVED
            ]
            if len(mine) > 1:
                names = ", ".join(sorted(s.name for s in mine))
                raise AmbiguousWorkspace(
                    f"several containers belong to {spec.path} ({names}); pass --container NAME"
                )
            if mine and fresh:
                await self.remove(mine[0].name)
                mine = []
            if mine:
                sup = mine[0]
                self._specs.setdefault(sup.name, spec)
                self._check_template(sup, template)
                if sup.state in (State.STOPPED, State.FAILED):
                    view = await self.docker.inspect(sup.name)
                    # Still running after a failed probe: recover in place (probe again)
                    # rather than asking Docker to start what already runs.
                    sup.request_start(running=view.status == "running")
                return sup
            name, found = await self._free_name(spec)
            self._specs[name] = spec
            adopted = self._supervisors.get(name)  # seen being created by another process
            if adopted is None and found is not None:
                adopted = self._adopt(found, quiet=False)
            if adopted is not None:
                self._check_template(adopted, template)
                if adopted.state in (State.STOPPED, State.FAILED):
                    adopted.request_start(running=found is not None and found.status == "running")
                return adopted
            image = image or await self._default_image()
            fsm, effects = ContainerFSM.new(
                self._now(), workspace=spec.path, container=name, timeouts=self._timeouts
            )
            sup = self._spawn(name, spec.path, fsm, effects)
            sup.owned = True
            sup.image = image
            sup.labels = template.labels if template else {}
            return sup

    async def _default_image(self) -> str:
        """The richest cai image the engine has (full, then sdks, then base): agents come
        with ``cai image build --layer full``, nothing to choose per command."""
        if self._image is None:
            for layer in reversed(IMAGE_LAYERS):
                if await self.docker.image_exists(image_ref(layer)):
                    self._image = image_ref(layer)
                    break
            else:
                raise ImageError(
                    f"no cai image on the engine ({image_ref('base')} is missing); "
                    "build one with `sudo cai image build`"
                )
        return self._image

    def _check_template(self, sup: Supervisor, template: Template | None) -> None:
        if template is None or sup.view is None:
            return
        if sup.view.labels.get(LABEL_TEMPLATE_HASH) != template.digest:
            sup.warnings.append(
                f"{sup.name} was not created from the current build of template "
                f"{template.name!r}; `cai up --fresh --template {template.name}` recreates it "
                "(the data volume is kept)"
            )

    async def _free_name(self, spec: WorkspaceSpec) -> tuple[str, ContainerView | None]:
        """The workspace's container name: the first of ``name``, ``name-2`` … that is free
        or already this workspace's (then with its view, to adopt it)."""
        from containai.model import suffixed

        for n in range(1, 100):
            candidate = spec.name if n == 1 else suffixed(spec.name, n)
            known = self._supervisors.get(candidate)
            if known is not None and known.state != State.REMOVED:
                if known.workspace == spec.path:
                    return candidate, None
                continue
            try:
                view = await self.docker.inspect(candidate)
            except ContainerGone:
                return candidate, None
            if view.labels.get(LABEL_WORKSPACE) == spec.path:
                return candidate, view  # ours, made by another cai process
        raise NameCollision(
            f"no free container name for {spec.path}: {spec.name} through -99 are taken"
        )

    async def _create(self, sup: Supervisor) -> None:
        spec = self._specs[sup.name]
        runtime, cgroup = await self._engine_runtime(spec.runtime)
        from containai.model import workspace_labels

        env = {
            "CAI_AUTHORIZED_KEY": await self.readiness.public_key(),
            "CAI_HOST_WORKSPACE": spec.path,
            "CAI_INNER_DOCKER": "1" if spec.inner_docker else "0",
            "TZ": os.environ.get("TZ", "UTC"),
        }
        env.update({f"CAI_ENV_{k}": v for k, v in spec.env.items()})
        create = CreateSpec(
            name=sup.name,
            image=sup.image,
            hostname=spec.hostname,
            labels={**workspace_labels(spec, sup.name), **sup.labels},
            env=env,
            binds=(f"{spec.path}:{WORKSPACE_MOUNT}", f"{spec.data_volume}:{DATA_MOUNT}"),
            ssh_port_range=spec.port_range,
            memory=spec.memory,
            nano_cpus=spec.nano_cpus,
            runtime=runtime,
            host_config_extra=host_config(
                runtime=runtime, cgroup_version=cgroup, inner_docker=spec.inner_docker
            ),
        )
        try:
            container_id = await self.docker.create(create)
        except DockerError as exc:
            if exc.status != 409:
                raise
            # Another cai process created it first: adopt it if it is this workspace's.
            view = await self._inspect_when_registered(sup.name)
            if view.labels.get(LABEL_WORKSPACE) != spec.path:
                raise
            container_id = view.id
            sup.container_id = container_id
            sup.feed(ContainerCreated(container_id=container_id))
            if view.status == "running":  # and started too: its start event may be gone
                sup.feed(ContainerStarted())
            return
        sup.key_injected = True  # through CAI_AUTHORIZED_KEY, added by containai-init
        sup.container_id = container_id
        sup.feed(ContainerCreated(container_id=container_id))

    async def _inspect_when_registered(self, name: str) -> ContainerView:
        """Inspect a container another process is creating: the engine reserves the name
        (our create gets 409) a moment before inspect can find the container (404)."""
        backoff = Backoff(initial=0.02, cap=0.25)
        with anyio.move_on_after(5):
            while True:
                try:
                    return await self.docker.inspect(name)
                except ContainerGone:
                    await anyio.sleep(backoff.next_delay())
        raise ContainerGone(
            f"the engine says the name {name} is taken, but no such container appeared",
            container=name,
        )

    async def _start(self, sup: Supervisor) -> None:
        try:
            await self.docker.start(sup.name)
        except PortRangeExhausted:
            # The engine leaves the container "created" when no port is free: remove it, so a
            # full range costs nothing but the error. Scheduled, so the machine records this
            # failure (and its reason) before Docker's destroy event reaches it.
            self._tg.start_soon(self._discard, sup.name)
            spec = self._specs.get(sup.name)
            port_range = spec.port_range if spec else SSH_PORT_RANGE
            raise PortRangeExhausted(
                _sshfiles.describe_exhausted(port_range), container=sup.name
            ) from None

    async def _discard(self, name: str) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            try:
                await self.docker.remove(name)
            except CaiError:
                pass

    async def _engine_runtime(self, wanted: str) -> tuple[str, int]:
        """The runtime for a workspace that wants ``wanted`` (``auto``: Sysbox when present),
        and the engine's cgroup version; the engine is asked once per orchestrator."""
        from containai.orchestrator._runtime import choose_runtime

        async with self._info_lock:
            if self._info is None:
                self._info = await self.docker.info()
        return choose_runtime(wanted, self._info.runtimes), self._info.cgroup_version

    async def _prefetch_engine_info(self) -> None:
        try:
            await self._engine_runtime("auto")
        except CaiError:
            pass  # create asks again and reports it

    # -- probes -------------------------------------------------------------------------------
    async def _probe(self, sup: Supervisor, probe: str, nudge: anyio.Event) -> None:
        spec = self._specs.get(sup.name)
        await self.readiness.probe(
            sup, probe, nudge, forward_agent=spec.forward_agent if spec else False
        )

    async def _own(self, sup: Supervisor) -> None:
        """Take a workspace this process only observed into use: once it is usable, run the
        full sshd probe (our key authorized, host key pinned, config written, a handshake)."""
        sup.owned = True
        await sup.wait_for(State.SSHD_READY)
        if not sup.verified:
            with anyio.fail_after(60):
                await self._probe(sup, "sshd", sup.sshd_nudge)

    # -- supervisors ----------------------------------------------------------------------------
    def _now(self) -> float:
        return anyio.current_time()

    def _spawn(
        self,
        name: str,
        workspace: str,
        fsm: ContainerFSM,
        effects: list[AnyEffect] | None = None,
        *,
        quiet: bool = False,
    ) -> Supervisor:
        sup = Supervisor(
            name=name,
            workspace=workspace,
            fsm=fsm,
            docker=self.docker,
            hooks=Hooks(
                create=self._create,
                start=self._start,
                probe=self._probe,
                publish=self._publish,
                clock=self._now,
            ),
            initial_effects=effects,
            quiet_until_settled=quiet,
        )
        self._supervisors[name] = sup
        self._tg.start_soon(self._run_supervisor, sup, name=f"supervisor {name}")
        return sup

    async def _run_supervisor(self, sup: Supervisor) -> None:
        try:
            await sup.run()
        finally:
            if self._supervisors.get(sup.name) is sup:
                del self._supervisors[sup.name]
                self._specs.pop(sup.name, None)

    def _adopt(self, view: ContainerView, *, quiet: bool, state: State | None = None) -> Supervisor:
        restored, reason = restored_state(view)
        state = state or restored
        fsm = ContainerFSM.restore(
            state,
            self._now(),
            workspace=view.labels.get(LABEL_WORKSPACE, ""),
            container=view.name,
            reason=reason,
            timeouts=self._timeouts,
        )
        # Only a running container replays its boot; a resting one has nothing to hide.
        quiet = quiet and state == State.BOOTING
        sup = self._spawn(view.name, view.labels.get(LABEL_WORKSPACE, ""), fsm, quiet=quiet)
        sup.view = view
        sup.container_id = view.id
        sup.ssh_port = view.ssh_port
        return sup

    def _publish(self, sup: Supervisor, transition: Transition) -> None:
        record = msgspec.structs.replace(
            transition, time=time.time(), workspace=sup.workspace, container=sup.name
        )
        sup.since = record.time
        self._counts["published"] += 1
        if self._journal is not None:
            try:
                self._journal.append(record)
            except OSError:
                pass  # the journal is a convenience; never fail a bring-up over it
        for send in list(self._subscribers):
            try:
                send.send_nowait(record)
            except anyio.WouldBlock:
                self._counts["sub_dropped"] += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(send)

    # -- events and reconcile -------------------------------------------------------------------
    async def watch(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> NoReturn:
        """Follow the engine's events forever, reconnecting with backoff; reconcile on every
        (re)connect. Reports started after the first successful subscribe + reconcile."""
        backoff = Backoff(initial=0.1, cap=5.0)
        started = False
        while True:
            try:
                async with self.docker.event_stream(since=self._since) as stream:
                    await self._reconcile()
                    if not started:
                        task_status.started()
                        started = True
                    backoff.reset()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._reconcile_on_demand)
                        async for event in stream:
                            self._route(event)
                        tg.cancel_scope.cancel()
            except DockerUnavailable:
                if not started:
                    raise
            self._counts["reconnects"] += 1
            await anyio.sleep(backoff.next_delay())

    async def _reconcile_on_demand(self) -> None:
        while True:
            await self._reconcile_needed.wait()
            self._reconcile_needed = anyio.Event()
            await self._reconcile()

    def _route(self, event: DockerEvent) -> None:
        self._counts["events"] += 1
        self._since = event.time_nano
        sup = self._supervisors.get(event.name)
        if sup is None:
            if event.action == "create":
                self._tg.start_soon(self._adopt_by_name, event.name)
            return
        if event.action == "create" and event.container_id == sup.container_id:
            return  # our own create, already fed from the API's answer
        fact = fact_of(event)
        if event.action == "start":
            sup.started_at = event.time_nano / 1e9  # the console starts there, no inspect
        if fact is not None and not sup.feed(fact):
            self._reconcile_needed.set()  # overflow policy: drop, count, reconcile

    async def _adopt_by_name(self, name: str) -> None:
        if name in self._supervisors:
            return
        try:
            view = await self.docker.inspect(name)
        except CaiError:
            return
        if name not in self._supervisors:
            # Seen being born: follow it from creating, like the process that made it.
            self._adopt(
                view, quiet=False, state=State.CREATING if view.status == "created" else None
            )

    async def _reconcile(self) -> None:
        self._counts["reconciles"] += 1
        views = await self.docker.list_managed()
        seen = set()
        for view in views:
            seen.add(view.name)
            sup = self._supervisors.get(view.name)
            if sup is None:
                self._adopt(view, quiet=True)
                continue
            sup.view = view
            correction = drift(sup.state, view)
            if correction is not None:
                sup.feed(correction)
        for name, sup in list(self._supervisors.items()):
            if name not in seen and sup.state not in (State.CREATING, State.REMOVED):
                sup.feed(ContainerDestroyed())


@asynccontextmanager
async def open_orchestrator(
    *,
    docker: DockerPort | None = None,
    ssh: SSHPort | None = None,
    engine: str | None = None,
    parallel: int | None = None,
    jitter: float = 0.05,
    journal: Journal | bool | None = True,
    key_path: Path | None = None,
    timeouts: Mapping[State, float] | None = None,
    images: ImagePort | None = None,
) -> AsyncIterator[Orchestrator]:
    """Open an orchestrator on the dedicated engine (or the given ports).

    Args:
        docker: a Docker port; default: the aiodocker adapter on ``engine``.
        engine: the engine's address; default ``[engine].socket`` of the user config (or
            ``CONTAINAI_ENGINE_SOCKET``), else cai's dedicated engine.
        ssh: an SSH port; default: the asyncssh adapter.
        parallel: how many workspaces may be coming up at once (default :func:`default_parallel`).
        jitter: up to this many seconds of random delay before each bring-up, so many starts
            don't hit the engine in the same instant.
        journal: append transitions to the XDG state journal (``False`` to disable).
        timeouts: per-state deadlines overriding the table's (tests, slow hosts).

    Raises:
        DockerUnavailable: the engine does not answer.

    Cancellation: leaving the context cancels every supervisor; containers keep running.
    """
    key = key_path or (config_home() / "id_containai")
    if engine is None:
        engine = await anyio.to_thread.run_sync(_configured_engine)
    async with _ports(docker, ssh, engine) as (docker_port, ssh_port, client_key):
        async with anyio.create_task_group() as tg:
            orch = Orchestrator(
                tg,
                docker_port,
                ssh_port,
                client_key=lambda: client_key(key),
                key_path=key,
                parallel=parallel or default_parallel(),
                jitter=jitter,
                journal=Journal() if journal is True else (journal or None),
                engine=engine,
                timeouts=timeouts,
                images=images,
            )
            await tg.start(orch.watch)
            try:
                yield orch
            finally:
                tg.cancel_scope.cancel()


def _configured_engine() -> str:
    """``[engine].socket`` from the user config or ``CONTAINAI_ENGINE_SOCKET`` (a workspace's
    own file cannot move a whole orchestrator to another engine)."""
    from containai.model import load_config

    return load_config(None).config.engine.socket


@asynccontextmanager
async def _ports(
    docker: DockerPort | None, ssh: SSHPort | None, engine: str
) -> AsyncIterator[tuple[DockerPort, SSHPort, Callable[[Path], Awaitable[str]]]]:
    if docker is not None and ssh is not None:

        async def fake_key(path: Path) -> str:
            from containai.orchestrator.testing._fake_docker import fake_host_key

            return fake_host_key("client").decode().strip()

        yield docker, ssh, fake_key
        return
    from containai.orchestrator.adapters import open_default_ports

    async with open_default_ports(engine) as (real_docker, real_ssh, client_key):
        yield docker or real_docker, ssh or real_ssh, client_key
