"""The dedicated Docker engine: desired state as data, a plan, and ``apply``.

Theory of operation: :func:`observe` reads what is on the host (daemon.json, the bridge, the
pidfile or systemd unit, whether the socket answers, the docker CLI context) into an
:class:`EngineState`; :func:`compute_plan` is pure and turns ``(layout, state)`` into an
:class:`EnginePlan` whose ``steps`` are the changes needed, in order; :func:`apply` performs them.
An empty plan means "nothing to change", which is what makes ``cai setup`` idempotent.

The engine never touches the user's own Docker: its socket, data-root, exec-root, pidfile and
bridge are all its own (:mod:`containai._defaults`), so a default ``dockerd`` coexists with it.
Where the host runs systemd the engine is the unit ``containai-docker.service``; elsewhere it is a
background ``dockerd`` in its own session whose output is appended to ``ENGINE_LOG`` and which is
"running" when the pidfile names a live ``dockerd`` and the socket answers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import anyio
import msgspec

from containai._defaults import (
    ENGINE_BRIDGE,
    ENGINE_BRIDGE_CIDR,
    ENGINE_CONFIG,
    ENGINE_CONTEXT,
    ENGINE_DATA_ROOT,
    ENGINE_EXEC_ROOT,
    ENGINE_LOG,
    ENGINE_PIDFILE,
    ENGINE_SOCKET,
    SYSBOX_RUNC,
)
from containai.fsm._errors import BackendError, CaiError, DockerUnavailable, NeedsRoot
from containai.orchestrator._backoff import Backoff
from containai.orchestrator._ports import EngineInfo

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Sequence

UNIT_NAME = "containai-docker.service"
Mode = Literal["systemd", "daemon"]


class InfoPort(Protocol):
    """The slice of :class:`~containai.orchestrator._ports.DockerPort` the engine code needs."""

    async def info(self) -> EngineInfo: ...


class EngineLayout(msgspec.Struct, frozen=True, kw_only=True):
    """Where the dedicated engine lives. Tests point every path into a temp dir."""

    config: Path = ENGINE_CONFIG
    socket: Path = Path(ENGINE_SOCKET)
    data_root: Path = ENGINE_DATA_ROOT
    exec_root: Path = ENGINE_EXEC_ROOT
    pidfile: Path = ENGINE_PIDFILE
    log: Path = ENGINE_LOG
    bridge: str = ENGINE_BRIDGE
    bridge_cidr: str = ENGINE_BRIDGE_CIDR
    sysbox_runc: Path = SYSBOX_RUNC
    systemd_marker: Path = Path("/run/systemd/system")
    unit: Path = Path("/etc/systemd/system") / UNIT_NAME
    context: str = ENGINE_CONTEXT

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


class EngineState(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`observe` found on the host."""

    euid: int
    systemd: bool
    sysbox: bool
    dockerd: str | None
    docker_cli: str | None
    config: str | None  # daemon.json text, None when absent
    unit: str | None = None  # unit file text (systemd hosts)
    unit_active: bool = False
    bridge_exists: bool = False
    bridge_addr: bool = False
    bridge_up: bool = False
    pid: int | None = None  # live dockerd named by the pidfile
    info: EngineInfo | None = None  # set when the socket answered
    context_host: str | None = None  # endpoint of the docker CLI context, None when missing
    data_root_real: str = ""  # the data-root with symlinks resolved, as dockerd reports it


# -- steps ------------------------------------------------------------------------------------
class Step(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    needs_root: ClassVar[bool] = True

    def describe(self) -> str:
        raise NotImplementedError


class InstallDocker(Step, frozen=True, tag="install-docker"):
    def describe(self) -> str:
        return "install Debian's docker.io with apt-get (no dockerd on PATH)"


class WriteConfig(Step, frozen=True, tag="write-config"):
    path: str
    content: str
    reason: str

    def describe(self) -> str:
        return f"write {self.path} ({self.reason})"


class CreateBridge(Step, frozen=True, tag="create-bridge"):
    name: str
    cidr: str
    missing: str

    def describe(self) -> str:
        return f"bridge {self.name} {self.cidr} ({self.missing})"


class WriteUnit(Step, frozen=True, tag="write-unit"):
    path: str
    content: str
    reason: str

    def describe(self) -> str:
        return f"write {self.path} ({self.reason}) and reload systemd"


class StartEngine(Step, frozen=True, tag="start-engine"):
    mode: Mode
    reason: str

    def describe(self) -> str:
        how = f"systemd unit {UNIT_NAME}" if self.mode == "systemd" else "background dockerd"
        return f"start the engine as {how} ({self.reason})"


class RestartEngine(Step, frozen=True, tag="restart-engine"):
    mode: Mode
    reason: str

    def describe(self) -> str:
        return f"restart the engine ({self.reason})"


class WaitForApi(Step, frozen=True, tag="wait-for-api"):
    host: str

    def describe(self) -> str:
        return f"wait until the API answers at {self.host} (backoff with jitter, bounded)"


class CreateContext(Step, frozen=True, tag="create-context"):
    needs_root: ClassVar[bool] = False
    name: str
    host: str
    update: bool

    def describe(self) -> str:
        verb = "point" if self.update else "create"
        return f"{verb} docker CLI context {self.name!r} at {self.host}"


AnyStep = (
    InstallDocker
    | WriteConfig
    | CreateBridge
    | WriteUnit
    | StartEngine
    | RestartEngine
    | WaitForApi
    | CreateContext
)


class EnginePlan(msgspec.Struct, frozen=True, kw_only=True):
    """The changes that bring the host to the desired engine, in the order they run."""

    layout: EngineLayout
    state: EngineState
    mode: Mode
    runtime: str  # the default runtime the engine will have
    steps: tuple[AnyStep, ...]

    @property
    def nothing_to_change(self) -> bool:
        return not self.steps

    @property
    def root_steps(self) -> list[AnyStep]:
        return [s for s in self.steps if s.needs_root]


# -- desired state ----------------------------------------------------------------------------
def desired_config(layout: EngineLayout, state: EngineState) -> dict[str, object]:
    """daemon.json as cai wants it; keys cai does not manage are kept from ``state.config``."""
    current = _parse(state.config) or {}
    config: dict[str, object] = {
        "hosts": [layout.host],
        "data-root": str(layout.data_root),
        "exec-root": str(layout.exec_root),
        "pidfile": str(layout.pidfile),
        "bridge": layout.bridge,
    }
    found = current.get("runtimes")
    runtimes: dict[str, object] = dict(found) if isinstance(found, dict) else {}
    runtimes.pop("sysbox-runc", None)
    if state.sysbox:
        runtimes["sysbox-runc"] = {"path": str(layout.sysbox_runc)}
    if runtimes:
        config["runtimes"] = runtimes
    config["default-runtime"] = "sysbox-runc" if state.sysbox else "runc"
    if state.systemd:
        # Debian's docker.io runs containerd as its own service there, and every dockerd that
        # finds /run/containerd/containerd.sock shares it: give ours its own namespaces so the
        # system dockerd and this one never see each other's containers.
        config["containerd-namespace"] = "containai"
        config["containerd-plugins-namespace"] = "containai-plugins"
    managed = {*config, "runtimes"}
    for key, value in current.items():
        if key not in managed:
            config[key] = value
    return config


def render_config(config: dict[str, object]) -> str:
    """One key per line, values inline: the layout of the hand-written reference file."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in config.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def render_unit(layout: EngineLayout, dockerd: str, ip: str) -> str:
    return f"""\
[Unit]
Description=ContainAI dedicated Docker engine ({layout.host})
After=network-online.target containerd.service sysbox.service
Wants=network-online.target

[Service]
Type=notify
ExecStartPre=-{ip} link add {layout.bridge} type bridge
ExecStartPre=-{ip} addr add {layout.bridge_cidr} dev {layout.bridge}
ExecStartPre={ip} link set {layout.bridge} up
ExecStart={dockerd} --config-file={layout.config}
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutStartSec=120
TimeoutStopSec=180
Restart=always
RestartSec=2
Delegate=yes
KillMode=process
OOMScoreAdjust=-500
LimitNOFILE=infinity
LimitNPROC=infinity
TasksMax=infinity

[Install]
WantedBy=multi-user.target
"""


def _parse(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# -- the plan ---------------------------------------------------------------------------------
def compute_plan(layout: EngineLayout, state: EngineState) -> EnginePlan:
    """The steps from ``state`` to the desired engine. Pure: no I/O."""
    mode: Mode = "systemd" if state.systemd else "daemon"
    want = desired_config(layout, state)
    runtime = str(want["default-runtime"])
    steps: list[AnyStep] = []
    if state.dockerd is None:
        steps.append(InstallDocker())

    current = _parse(state.config)
    config_changed = current != want
    if config_changed:
        reason = "new" if state.config is None else _config_diff(current, want)
        steps.append(
            WriteConfig(path=str(layout.config), content=render_config(want), reason=reason)
        )

    missing = [
        what
        for what, ok in (
            ("missing", state.bridge_exists),
            ("no address", state.bridge_addr or not state.bridge_exists),
            ("down", state.bridge_up or not state.bridge_exists),
        )
        if not ok
    ]
    if missing:
        steps.append(
            CreateBridge(name=layout.bridge, cidr=layout.bridge_cidr, missing=", ".join(missing))
        )

    unit_changed = False
    if mode == "systemd":
        unit = render_unit(layout, state.dockerd or "/usr/sbin/dockerd", "/usr/sbin/ip")
        if state.unit != unit:
            unit_changed = True
            steps.append(
                WriteUnit(
                    path=str(layout.unit),
                    content=unit,
                    reason="new" if state.unit is None else "changed",
                )
            )

    running = state.info is not None and (state.unit_active if mode == "systemd" else True)
    if not running:
        steps.append(StartEngine(mode=mode, reason=_why_not_running(state, mode)))
        steps.append(WaitForApi(host=layout.host))
    else:
        assert state.info is not None
        reasons = []
        if config_changed:
            reasons.append("daemon.json changed")
        if unit_changed:
            reasons.append("unit changed")
        if state.info.default_runtime and state.info.default_runtime != runtime:
            reasons.append(f"it runs default runtime {state.info.default_runtime}, want {runtime}")
        if state.info.data_root and state.info.data_root not in (
            str(layout.data_root),
            state.data_root_real,
        ):
            reasons.append(f"it uses data-root {state.info.data_root}")
        if reasons:
            steps.append(RestartEngine(mode=mode, reason="; ".join(dict.fromkeys(reasons))))
            steps.append(WaitForApi(host=layout.host))

    if (state.docker_cli or state.dockerd is None) and state.context_host != layout.host:
        steps.append(
            CreateContext(
                name=layout.context, host=layout.host, update=state.context_host is not None
            )
        )
    return EnginePlan(layout=layout, state=state, mode=mode, runtime=runtime, steps=tuple(steps))


def _config_diff(current: dict[str, object] | None, want: dict[str, object]) -> str:
    if current is None:
        return "unreadable, replaced"
    changed = sorted(k for k in {*current, *want} if current.get(k) != want.get(k))
    return "changed: " + ", ".join(changed)


def _why_not_running(state: EngineState, mode: Mode) -> str:
    if mode == "systemd" and state.info is not None:
        return "the socket answers but the unit is not active"
    if state.pid is not None:
        return f"dockerd pid {state.pid} is alive but the socket does not answer"
    return "not running"


# -- observing the host -----------------------------------------------------------------------
async def observe(
    layout: EngineLayout,
    port: InfoPort,
    *,
    euid: int | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> EngineState:
    """Read the engine's actual state from the host (no changes, no root needed)."""
    systemd = layout.systemd_marker.exists()
    docker_cli = which("docker")
    bridge_exists, bridge_addr, bridge_up = await _bridge_state(layout, which("ip"))
    info: EngineInfo | None
    try:
        with anyio.fail_after(10):
            info = await port.info()
    except (CaiError, TimeoutError):
        info = None
    return EngineState(
        euid=os.geteuid() if euid is None else euid,
        systemd=systemd,
        sysbox=layout.sysbox_runc.exists(),
        dockerd=which("dockerd"),
        docker_cli=docker_cli,
        config=_read(layout.config),
        unit=_read(layout.unit) if systemd else None,
        unit_active=systemd and await _unit_active(which("systemctl")),
        bridge_exists=bridge_exists,
        bridge_addr=bridge_addr,
        bridge_up=bridge_up,
        pid=live_dockerd(layout.pidfile),
        info=info,
        context_host=await _context_host(layout.context, docker_cli),
        data_root_real=os.path.realpath(layout.data_root),
    )


async def plan(layout: EngineLayout, port: InfoPort, *, euid: int | None = None) -> EnginePlan:
    """Observe the host and compute the plan. See :func:`compute_plan`.

    Raises:
        NeedsRoot: the socket exists but this user may not open it, so whether the engine
            runs cannot be told (planning a start would be wrong).
    """
    state = await observe(layout, port, euid=euid)
    if state.info is None and state.euid != 0 and _denied(layout.socket):
        raise NeedsRoot(
            f"cai setup cannot open {layout.socket} as uid {state.euid}; run it with sudo "
            "(or join the socket's group to use the engine)"
        )
    return compute_plan(layout, state)


def _denied(path: Path) -> bool:
    return path.exists() and not os.access(path, os.R_OK | os.W_OK)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def live_dockerd(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` when it names a live (not zombie) ``dockerd``, else None."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_live_dockerd(pid) else None


def _is_live_dockerd(pid: int) -> bool:
    return _is_live(pid, "dockerd")


def _exited(pid: int) -> bool:
    """``pid`` is gone or a zombie (its name is not checked: no race with its exec)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _is_live(pid: int, name: str) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return comm == name and state not in ("Z", "X")


async def _run(cmd: Sequence[str], *, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    try:
        result = await anyio.run_process(list(cmd), check=False)
    except FileNotFoundError as exc:
        raise BackendError(f"{cmd[0]} not found: {exc}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise BackendError(f"`{' '.join(cmd)}` failed ({result.returncode}): {detail}")
    return result


async def _bridge_state(layout: EngineLayout, ip: str | None) -> tuple[bool, bool, bool]:
    if ip is None:
        return (Path("/sys/class/net") / layout.bridge).exists(), False, False
    result = await _run([ip, "-j", "-4", "addr", "show", "dev", layout.bridge])
    if result.returncode != 0:
        return False, False, False
    try:
        links = json.loads(result.stdout or b"[]")
    except ValueError:
        return True, False, False
    if not links:
        return False, False, False
    link = links[0]
    want_ip, _, want_len = layout.bridge_cidr.partition("/")
    has_addr = any(
        a.get("local") == want_ip and str(a.get("prefixlen")) == want_len
        for a in link.get("addr_info", [])
    )
    return True, has_addr, "UP" in link.get("flags", [])


async def _unit_active(systemctl: str | None) -> bool:
    if systemctl is None:
        return False
    result = await _run([systemctl, "is-active", "--quiet", UNIT_NAME])
    return result.returncode == 0


async def _context_host(name: str, docker_cli: str | None) -> str | None:
    if docker_cli is None:
        return None
    result = await _run(
        [docker_cli, "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}"]
    )
    if result.returncode != 0:
        return None
    return result.stdout.decode().strip() or None


# -- applying ---------------------------------------------------------------------------------
async def apply(
    engine_plan: EnginePlan,
    port: InfoPort,
    *,
    within: float = 60.0,
    on_step: Callable[[AnyStep], None] | None = None,
) -> list[AnyStep]:
    """Perform the plan's steps in order; return the steps done.

    Args:
        engine_plan: from :func:`plan`.
        port: answers ``info()`` once the engine is up (the wait after a start).
        within: seconds to wait for the API after a (re)start.
        on_step: called with each step before it runs (progress output).

    Raises:
        NeedsRoot: some step needs root and the plan was observed by another user; nothing done.
        DockerUnavailable: the engine did not answer within ``within`` seconds (names the log file).
        BackendError: a command (apt-get, ip, systemctl, docker) failed.
    """
    layout, state = engine_plan.layout, engine_plan.state
    needs = engine_plan.root_steps
    if needs and state.euid != 0:
        raise NeedsRoot(
            "cai setup needs root to: "
            + "; ".join(s.describe() for s in needs)
            + ". Run it again with sudo."
        )
    done: list[AnyStep] = []
    pid: int | None = None  # the dockerd a start step launched, watched while waiting
    for step in engine_plan.steps:
        if on_step is not None:
            on_step(step)
        match step:
            case InstallDocker():
                await _install_docker()
            case WriteConfig(path=path, content=content) | WriteUnit(path=path, content=content):
                _write_atomic(Path(path), content)
                if isinstance(step, WriteUnit):
                    await _run(["systemctl", "daemon-reload"], check=True)
            case CreateBridge():
                await _create_bridge(layout)
            case StartEngine(mode=mode) | RestartEngine(mode=mode):
                restart = isinstance(step, RestartEngine)
                if restart and mode == "daemon" and live_dockerd(layout.pidfile) is None:
                    # something answers on our socket that we did not start: a new dockerd
                    # would take the socket path over from it
                    raise BackendError(
                        f"cannot restart the engine: {layout.host} answers but {layout.pidfile} "
                        "names no live dockerd; stop whatever serves it, then run cai setup again"
                    )
                pid = await _start(layout, mode, restart=restart)
            case WaitForApi():
                await wait_engine(layout, port, within=within, pid=pid)
            case CreateContext(name=name, host=host, update=update):
                await _create_context(name, host, update=update)
        done.append(step)
    return done


def _write_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    os.replace(tmp, path)


async def _install_docker() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "docker.io"]):
        try:
            result = await anyio.run_process(cmd, check=False, env=env)
        except FileNotFoundError as exc:
            raise BackendError("no dockerd and no apt-get: install Docker Engine by hand") from exc
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise BackendError(f"`{' '.join(cmd)}` failed: {' / '.join(tail)}")


async def _create_bridge(layout: EngineLayout) -> None:
    ip = shutil.which("ip")
    if ip is None:
        raise BackendError("`ip` not found: apt-get install -y iproute2")
    if not (Path("/sys/class/net") / layout.bridge).exists():
        await _run([ip, "link", "add", layout.bridge, "type", "bridge"], check=True)
    await _run([ip, "addr", "replace", layout.bridge_cidr, "dev", layout.bridge], check=True)
    await _run([ip, "link", "set", layout.bridge, "up"], check=True)


async def _start(layout: EngineLayout, mode: Mode, *, restart: bool) -> int | None:
    if mode == "systemd":
        pid = live_dockerd(layout.pidfile)
        if pid is not None and not await _unit_active(shutil.which("systemctl")):
            await _stop_daemon(layout, pid)  # a background dockerd from a non-systemd run
        verb = "restart" if restart else "start"
        await _run(["systemctl", "enable", UNIT_NAME], check=True)
        await _run(["systemctl", verb, UNIT_NAME], check=True)
        return None
    pid = live_dockerd(layout.pidfile)
    if pid is not None:
        await _stop_daemon(layout, pid)
    layout.pidfile.unlink(missing_ok=True)  # stale: dockerd refuses to start over a reused pid
    await _stop_orphan_containerd(layout)
    return await start_daemon(layout)


async def _stop_orphan_containerd(layout: EngineLayout) -> None:
    """Clear the containerd a dead dockerd left behind under our exec-root.

    Measured here: after ``kill -9`` of dockerd its containerd dies too but stays a zombie when
    PID 1 does not reap orphans, and the next dockerd reads ``containerd.pid``, finds the pid
    "still running", fails to connect and gives up. So a pidfile naming anything but a live
    containerd is removed, and a live one is stopped. Only a containerd whose command line
    names our exec-root is touched, never the system's.
    """
    pidfile = layout.exec_root / "containerd" / "containerd.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if _is_live(pid, "containerd"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            cmdline = ""
        if str(layout.exec_root) not in cmdline:
            return
        await _stop_process(pid, layout, name="containerd", grace=30.0)
    pidfile.unlink(missing_ok=True)


async def start_daemon(layout: EngineLayout) -> int:
    """Start ``dockerd --config-file`` in its own session, detached from cai; return its pid.

    A short-lived helper interpreter spawns it so dockerd is never cai's child (cai may exit at
    once); its stdout and stderr are appended to ``layout.log``.
    """
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise BackendError("dockerd not found on PATH: apt-get install -y docker.io")
    layout.log.parent.mkdir(parents=True, exist_ok=True)
    spawn = (
        "import subprocess, sys\n"
        "log = open(sys.argv[1], 'ab')\n"
        "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,"
        " stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)\n"
        "print(p.pid)\n"
    )
    result = await _run(
        [
            sys.executable,
            "-c",
            spawn,
            str(layout.log),
            dockerd,
            "--config-file",
            str(layout.config),
        ],
        check=True,
    )
    return int(result.stdout.decode().strip())


async def _stop_daemon(layout: EngineLayout, pid: int) -> None:
    """SIGTERM dockerd and wait for it to exit (it stops its containers first)."""
    await _stop_process(pid, layout, name="dockerd", grace=90.0)


async def _stop_process(pid: int, layout: EngineLayout, *, name: str, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    backoff = Backoff(initial=0.05, cap=1.0)
    with anyio.move_on_after(grace):
        # not our child, so nothing signals its exit: poll, backing off
        while _is_live(pid, name):  # noqa: ASYNC110
            await anyio.sleep(backoff.next_delay())
        return
    raise BackendError(f"{name} pid {pid} did not stop within {grace:.0f}s; see {layout.log}")


async def wait_engine(
    layout: EngineLayout, port: InfoPort, *, within: float = 60.0, pid: int | None = None
) -> EngineInfo:
    """Wait until the engine's API answers: capped exponential backoff with jitter.

    Args:
        layout: names the socket and the log file for the error message.
        port: whose ``info()`` is the probe.
        within: give up after this many seconds.
        pid: the dockerd just started; when it exits, stop waiting at once.

    Raises:
        DockerUnavailable: no answer within ``within`` seconds, or dockerd exited; the message
            names the log file and quotes its last lines.
    """
    backoff = Backoff(initial=0.05, cap=2.0)
    with anyio.move_on_after(within):
        while True:
            try:
                return await port.info()
            except CaiError:
                pass
            if pid is not None and _exited(pid):
                raise DockerUnavailable(
                    f"dockerd (pid {pid}) exited before its API answered; "
                    f"its log is {layout.log}{_log_tail(layout.log)}"
                )
            await anyio.sleep(backoff.next_delay())
    raise DockerUnavailable(
        f"the engine at {layout.host} did not answer within {within:g}s; "
        f"its log is {layout.log}{_log_tail(layout.log)}"
    )


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "; last lines:\n  " + "\n  ".join(tail) if tail else ""


async def _create_context(name: str, host: str, *, update: bool) -> None:
    docker = shutil.which("docker")
    if docker is None:
        return  # docker.io was just installed without a CLI on PATH: nothing to configure
    verb = "update" if update else "create"
    await _run(
        [
            docker,
            "context",
            verb,
            name,
            "--description",
            "cai's dedicated engine",
            "--docker",
            f"host={host}",
        ],
        check=True,
    )
