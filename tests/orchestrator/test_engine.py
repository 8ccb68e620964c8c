"""The dedicated engine's plan: desired vs actual state, computed against temp paths."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import msgspec
import pytest

from containai.fsm._errors import BackendError, DockerUnavailable, NeedsRoot
from containai.orchestrator import _engine
from containai.orchestrator._engine import (
    CreateBridge,
    CreateContext,
    EngineLayout,
    EngineState,
    InstallDocker,
    RestartEngine,
    StartEngine,
    WaitForApi,
    WriteConfig,
    WriteUnit,
)
from containai.orchestrator._ports import EngineInfo

REFERENCE_CONFIG = """\
{
  "hosts": ["unix:///var/run/containai-docker.sock"],
  "data-root": "/var/lib/containai-docker",
  "exec-root": "/var/run/containai-docker",
  "pidfile": "/var/run/containai-docker.pid",
  "bridge": "cai0",
  "default-runtime": "runc"
}
"""


def _info(runtime: str = "runc", data_root: str = "/var/lib/containai-docker") -> EngineInfo:
    return EngineInfo(
        version="20.10.24",
        default_runtime=runtime,
        runtimes=["runc", "sysbox-runc"] if runtime == "sysbox-runc" else ["runc"],
        cgroup_version=1,
        kernel="6.1.0",
        memory=8 << 30,
        cpus=2,
        data_root=data_root,
    )


def _fresh(**changes: object) -> EngineState:
    """A Debian 12 host with nothing installed, as root, without systemd."""
    state = EngineState(
        euid=0, systemd=False, sysbox=False, dockerd=None, docker_cli=None, config=None
    )
    return msgspec.structs.replace(state, **changes)


def _done(**changes: object) -> EngineState:
    """The state this machine is in after `cai setup`."""
    state = _fresh(
        dockerd="/usr/sbin/dockerd",
        docker_cli="/usr/bin/docker",
        config=REFERENCE_CONFIG,
        bridge_exists=True,
        bridge_addr=True,
        bridge_up=True,
        pid=2443,
        info=_info(),
        context_host="unix:///var/run/containai-docker.sock",
    )
    return msgspec.structs.replace(state, **changes)


def _kinds(plan: _engine.EnginePlan) -> list[type]:
    return [type(s) for s in plan.steps]


class TestComputePlan:
    def test_plan_fresh_host_has_every_step_in_order(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _fresh())
        assert _kinds(plan) == [
            InstallDocker,
            WriteConfig,
            CreateBridge,
            StartEngine,
            WaitForApi,
            CreateContext,
        ]
        assert plan.mode == "daemon"
        assert plan.runtime == "runc"

    def test_plan_fresh_config_is_the_reference_file_byte_for_byte(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _fresh())
        write = next(s for s in plan.steps if isinstance(s, WriteConfig))
        assert write.content == REFERENCE_CONFIG
        assert write.path == "/etc/containai/docker/daemon.json"

    def test_plan_identical_state_changes_nothing(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _done())
        assert plan.nothing_to_change
        assert plan.steps == ()

    def test_plan_reformatted_but_equal_config_changes_nothing(self) -> None:
        config = json.dumps(json.loads(REFERENCE_CONFIG), indent=4)
        assert _engine.compute_plan(EngineLayout(), _done(config=config)).nothing_to_change

    def test_plan_changed_config_rewrites_and_restarts(self) -> None:
        config = REFERENCE_CONFIG.replace('"cai0"', '"docker0"')
        plan = _engine.compute_plan(EngineLayout(), _done(config=config))
        assert _kinds(plan) == [WriteConfig, RestartEngine, WaitForApi]
        write, restart, _ = plan.steps
        assert isinstance(write, WriteConfig)
        assert "bridge" in write.reason
        assert "daemon.json changed" in restart.describe()

    def test_plan_config_edited_while_running_restarts(self) -> None:
        """The file already says sysbox-runc but the running engine still runs runc."""
        state = _done(sysbox=True, info=_info("runc"))
        state = msgspec.structs.replace(
            state, config=_engine.render_config(_engine.desired_config(EngineLayout(), state))
        )
        plan = _engine.compute_plan(EngineLayout(), state)
        assert _kinds(plan) == [RestartEngine, WaitForApi]
        assert "runc" in plan.steps[0].describe()

    def test_plan_sysbox_present_makes_it_the_default_runtime(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _fresh(sysbox=True))
        assert plan.runtime == "sysbox-runc"
        write = next(s for s in plan.steps if isinstance(s, WriteConfig))
        config = json.loads(write.content)
        assert config["default-runtime"] == "sysbox-runc"
        assert config["runtimes"] == {"sysbox-runc": {"path": "/usr/bin/sysbox-runc"}}

    def test_plan_sysbox_installed_later_rewrites_and_restarts(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _done(sysbox=True))
        assert _kinds(plan) == [WriteConfig, RestartEngine, WaitForApi]
        assert plan.runtime == "sysbox-runc"

    def test_plan_keeps_keys_cai_does_not_manage(self) -> None:
        config = json.loads(REFERENCE_CONFIG) | {"registry-mirrors": ["https://mirror.example"]}
        plan = _engine.compute_plan(EngineLayout(), _done(config=json.dumps(config)))
        assert plan.nothing_to_change

    def test_plan_symlinked_data_root_is_not_a_change(self) -> None:
        """dockerd reports the data-root with symlinks resolved."""
        state = _done(info=_info(data_root="/srv/docker"), data_root_real="/srv/docker")
        assert _engine.compute_plan(EngineLayout(), state).nothing_to_change
        moved = _done(info=_info(data_root="/var/lib/docker"), data_root_real="/srv/docker")
        assert _kinds(_engine.compute_plan(EngineLayout(), moved)) == [RestartEngine, WaitForApi]

    def test_plan_dead_engine_is_started_not_restarted(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _done(pid=None, info=None))
        assert _kinds(plan) == [StartEngine, WaitForApi]

    def test_plan_hung_dockerd_is_named(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _done(info=None))
        assert "pid 2443" in plan.steps[0].describe()

    def test_plan_bridge_without_address(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _done(bridge_addr=False))
        assert _kinds(plan) == [CreateBridge]
        assert "no address" in plan.steps[0].describe()

    def test_plan_context_missing_or_elsewhere(self) -> None:
        missing = _engine.compute_plan(EngineLayout(), _done(context_host=None))
        assert _kinds(missing) == [CreateContext]
        moved = _engine.compute_plan(EngineLayout(), _done(context_host="unix:///x.sock"))
        step = moved.steps[0]
        assert isinstance(step, CreateContext)
        assert step.update

    def test_plan_no_docker_cli_no_context(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _done(docker_cli=None, context_host=None))
        assert plan.nothing_to_change

    def test_plan_systemd_host_writes_a_unit_and_own_containerd_namespace(self) -> None:
        plan = _engine.compute_plan(EngineLayout(), _fresh(systemd=True))
        assert _kinds(plan) == [
            InstallDocker,
            WriteConfig,
            CreateBridge,
            WriteUnit,
            StartEngine,
            WaitForApi,
            CreateContext,
        ]
        unit = next(s for s in plan.steps if isinstance(s, WriteUnit))
        assert "--config-file=/etc/containai/docker/daemon.json" in unit.content
        assert "Type=notify" in unit.content
        config = json.loads(next(s for s in plan.steps if isinstance(s, WriteConfig)).content)
        assert config["containerd-namespace"] == "containai"

    def test_plan_systemd_unit_inactive_is_started(self) -> None:
        state = _fresh(systemd=True)
        done = _engine.compute_plan(EngineLayout(), state)
        unit = next(s for s in done.steps if isinstance(s, WriteUnit)).content
        config = next(s for s in done.steps if isinstance(s, WriteConfig)).content
        state = _done(systemd=True, unit=unit, config=config, unit_active=False)
        assert _kinds(_engine.compute_plan(EngineLayout(), state)) == [StartEngine, WaitForApi]
        active = msgspec.structs.replace(state, unit_active=True)
        assert _engine.compute_plan(EngineLayout(), active).nothing_to_change


class _Port:
    def __init__(self, info: EngineInfo | None = None) -> None:
        self._info = info
        self.calls = 0

    async def info(self) -> EngineInfo:
        self.calls += 1
        if self._info is None:
            raise DockerUnavailable("nothing answers")
        return self._info


def _layout(tmp_path: Path) -> EngineLayout:
    return EngineLayout(
        config=tmp_path / "etc" / "daemon.json",
        socket=tmp_path / "docker.sock",
        data_root=tmp_path / "data",
        exec_root=tmp_path / "exec",
        pidfile=tmp_path / "docker.pid",
        log=tmp_path / "log" / "dockerd.log",
        bridge="cai-no-such-br",
        sysbox_runc=tmp_path / "sysbox-runc",
        systemd_marker=tmp_path / "run-systemd-system",
        unit=tmp_path / "containai-docker.service",
        context="cai-test-no-such-context",
    )


class TestObserveAndApply:
    async def test_observe_fresh_temp_layout(self, tmp_path: Path) -> None:
        layout = _layout(tmp_path)
        state = await _engine.observe(layout, _Port(), euid=0, which=lambda _: None)
        assert state.config is None
        assert state.pid is None
        assert state.info is None
        assert not state.sysbox
        assert not state.systemd
        plan = _engine.compute_plan(layout, state)
        assert _kinds(plan) == [
            InstallDocker,
            WriteConfig,
            CreateBridge,
            StartEngine,
            WaitForApi,
            CreateContext,
        ]

    async def test_observe_sysbox_binary_present(self, tmp_path: Path) -> None:
        layout = _layout(tmp_path)
        layout.sysbox_runc.write_text("")
        state = await _engine.observe(layout, _Port(), euid=0, which=lambda _: None)
        assert _engine.compute_plan(layout, state).runtime == "sysbox-runc"

    async def test_observe_stale_pidfile_is_not_a_live_dockerd(self, tmp_path: Path) -> None:
        layout = _layout(tmp_path)
        layout.pidfile.write_text(f"{os.getpid()}\n")  # alive, but not dockerd
        assert _engine.live_dockerd(layout.pidfile) is None

    async def test_apply_not_root_raises_needs_root_and_changes_nothing(
        self, tmp_path: Path
    ) -> None:
        layout = _layout(tmp_path)
        state = await _engine.observe(layout, _Port(), euid=1000, which=lambda _: None)
        plan = _engine.compute_plan(layout, state)
        with pytest.raises(NeedsRoot, match=r"needs root to: .*write .*daemon\.json") as info:
            await _engine.apply(plan, _Port())
        assert "sudo" in str(info.value)
        assert not layout.config.exists()

    async def test_plan_not_root_and_socket_closed_to_us_needs_root(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Not being able to open the socket says nothing about whether the engine runs."""
        monkeypatch.setattr(_engine, "_denied", lambda path: True)
        with pytest.raises(NeedsRoot, match=r"cannot open .*docker\.sock as uid 1000"):
            await _engine.plan(_layout(tmp_path), _Port(), euid=1000)

    async def test_apply_not_root_context_only_needs_no_root(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A docker CLI context is per user: creating it is the one step that needs no root."""
        made: list[str] = []

        async def fake_context(name: str, host: str, *, update: bool) -> None:
            made.append(name)

        monkeypatch.setattr(_engine, "_create_context", fake_context)
        plan = _engine.compute_plan(EngineLayout(), _done(euid=1000, context_host=None))
        assert _kinds(plan) == [CreateContext]
        assert plan.root_steps == []
        assert await _engine.apply(plan, _Port(_info())) == list(plan.steps)
        assert made == ["containai"]

    async def test_apply_restart_of_a_socket_we_did_not_start_refuses(self, tmp_path: Path) -> None:
        layout = _layout(tmp_path)
        state = _done(config="{}", pid=None)  # answers, but no pidfile of ours
        plan = _engine.compute_plan(layout, state)
        assert _kinds(plan)[:2] == [WriteConfig, RestartEngine]
        plan = msgspec.structs.replace(plan, steps=plan.steps[1:])  # from the restart on
        with pytest.raises(BackendError, match="names no live dockerd"):
            await _engine.apply(plan, _Port(_info()))

    async def test_wait_engine_gives_up_naming_the_log(self, tmp_path: Path) -> None:
        layout = _layout(tmp_path)
        layout.log.parent.mkdir(parents=True)
        layout.log.write_text('level=fatal msg="boom"\n')
        port = _Port()
        with pytest.raises(DockerUnavailable, match=r"(?s)within 0.3s.*dockerd\.log.*boom"):
            await _engine.wait_engine(layout, port, within=0.3)
        assert 1 < port.calls < 20  # backed off, not a busy loop


# -- a real scratch engine on temp paths, beside the real one -----------------------------------
def _can_run_engine() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("dockerd", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.mark.docker
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_scratch_engine_start_idempotent_restart_and_crash(tmp_path: Path) -> None:
    """From nothing to an answering engine, then nothing to change, a config change restarts it,
    and a ``kill -9`` is recovered from. Own socket, roots, pidfile and bridge: the real
    engine is untouched."""
    reason = _can_run_engine()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    from containai.orchestrator.adapters._docker import open_docker

    # unique per run (several suites may run at once on one machine); short for the socket path
    base = Path(tempfile.mkdtemp(prefix="cai-scr-", dir="/tmp"))
    n = os.getpid() % 250
    layout = EngineLayout(
        config=base / "daemon.json",
        socket=base / "docker.sock",
        data_root=base / "data",
        exec_root=base / "exec",
        pidfile=base / "docker.pid",
        log=base / "dockerd.log",
        bridge=f"caiscr{os.getpid()}"[:15],
        bridge_cidr=f"10.213.{n}.1/24",
        systemd_marker=tmp_path / "no-systemd",  # always the background-daemon path
        context=f"cai-scratch-{os.getpid()}",
    )
    # Every dockerd rebuilds the shared DOCKER iptables chains as it starts, so two starting at
    # once race ("No chain/target/match"), and a scratch engine could disturb the real one's
    # rules: this one keeps out of iptables. A key cai does not manage, kept on rewrite.
    layout.config.write_text('{"iptables": false}\n')
    try:
        async with open_docker(layout.host) as port:
            plan = await _engine.plan(layout, port)
            assert StartEngine in _kinds(plan)
            write = plan.steps[0]
            assert isinstance(write, WriteConfig)
            assert '"iptables": false' in write.content
            await _engine.apply(plan, port, within=60)
            assert (await port.info()).default_runtime == "runc"

            assert (await _engine.plan(layout, port)).nothing_to_change

            layout.config.write_text(layout.config.read_text().replace(layout.bridge, "docker0"))
            plan = await _engine.plan(layout, port)
            assert _kinds(plan) == [WriteConfig, RestartEngine, WaitForApi]
            await _engine.apply(plan, port, within=60)
            assert (await _engine.plan(layout, port)).nothing_to_change

            pid = _engine.live_dockerd(layout.pidfile)
            assert pid is not None
            os.kill(pid, 9)
            plan = await _engine.plan(layout, port)
            assert _kinds(plan) == [StartEngine, WaitForApi]
            await _engine.apply(plan, port, within=60)
            assert (await _engine.plan(layout, port)).nothing_to_change
    except BaseException:
        if layout.log.exists():  # kept under tmp_path by pytest, for a post-mortem
            shutil.copy(layout.log, tmp_path / "dockerd.log")
        raise
    finally:
        await _cleanup_scratch(layout)


async def _cleanup_scratch(layout: EngineLayout) -> None:
    import anyio

    pid = _engine.live_dockerd(layout.pidfile)
    if pid is not None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(60):
            await _engine._stop_daemon(layout, pid)
    docker = shutil.which("docker")
    if docker:
        await anyio.run_process([docker, "context", "rm", "-f", layout.context], check=False)
    await anyio.run_process(["ip", "link", "del", layout.bridge], check=False)
    # dockerd bind-mounts its data-root onto itself; a killed one leaves the mount behind
    for _ in range(4):
        result = await anyio.run_process(["umount", "-l", str(layout.data_root)], check=False)
        if result.returncode != 0:
            break
    shutil.rmtree(layout.socket.parent, ignore_errors=True)
