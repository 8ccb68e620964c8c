"""The orchestrator core against the in-memory fakes, on asyncio and trio."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from containai._defaults import LABEL_WORKSPACE, MARKER_INIT_DONE
from containai.fsm import State
from containai.fsm._lifecycle import Transition
from containai.orchestrator import WorkspaceFailed
from containai.orchestrator.testing import FakeDocker

HAPPY = ["creating", "booting", "init-done", "sshd-ready"]


async def _collect(orch, into: list[Transition]) -> None:
    async for record in orch.events():
        into.append(record)


class TestUp:
    async def test_up_reaches_sshd_ready_with_ordered_transitions(
        self, orchestrator, make_workspace, fake: FakeDocker
    ) -> None:
        ws = make_workspace("app")
        seen: list[Transition] = []
        async with orchestrator() as orch, anyio.create_task_group() as tg:
            tg.start_soon(_collect, orch, seen)
            await anyio.lowlevel.checkpoint()
            status = await orch.up(ws)
            await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert status.state == "sshd-ready"
        assert status.workspace == str(ws)
        assert status.ssh_port is not None
        assert [t.to_state for t in seen] == HAPPY
        assert all(t.container == status.name and t.workspace == str(ws) for t in seen)
        assert [c.name for c in fake.containers.values()] == [status.name]

    async def test_up_twice_reuses_the_container(self, orchestrator, make_workspace, fake) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            first = await orch.up(ws)
            second = await orch.up(ws)
        assert first.name == second.name
        assert len(fake.containers) == 1

    async def test_up_writes_pinned_host_key_and_ssh_config(
        self, orchestrator, make_workspace, isolated_home: Path
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
        conf = isolated_home / ".ssh" / "containai.d" / f"{status.name}.conf"
        assert f"Port {status.ssh_port}" in conf.read_text()
        known = (isolated_home / ".config" / "containai" / "known_hosts").read_text()
        assert f"[127.0.0.1]:{status.ssh_port}" in known

    async def test_many_workspaces_come_up_in_parallel_with_distinct_ports(
        self, orchestrator, make_workspace
    ) -> None:
        paths = [make_workspace(f"w{i}") for i in range(10)]
        results = {}
        async with orchestrator(parallel=4) as orch:
            async with anyio.create_task_group() as tg:
                for path in paths:

                    async def one(p: Path = path) -> None:
                        results[p] = await orch.up(p)

                    tg.start_soon(one)
        assert all(s.state == "sshd-ready" for s in results.values())
        assert len({s.ssh_port for s in results.values()}) == 10
        assert len({s.name for s in results.values()}) == 10

    async def test_same_directory_name_elsewhere_gets_a_suffixed_name(
        self, orchestrator, tmp_path: Path
    ) -> None:
        a = tmp_path / "one" / "app"
        b = tmp_path / "two" / "app"
        a.mkdir(parents=True)
        b.mkdir(parents=True)
        async with orchestrator() as orch:
            first = await orch.up(a)
            second = await orch.up(b)
        assert first.name != second.name
        assert second.name.startswith(first.name[:10])
        assert second.name.endswith("-2")


class TestFailures:
    async def test_died_while_booting_fails_with_reason(self, orchestrator, make_workspace) -> None:
        docker = FakeDocker(boot=("systemd booting",))
        docker.on_start = lambda c: docker.die(c.name, 3)
        async with orchestrator(docker) as orch:
            with pytest.raises(WorkspaceFailed, match="code 3"):
                await orch.up(make_workspace("app"))
            assert orch.workspaces()[0].state == "failed"

    async def test_oom_killed_workspace_fails_with_oom_reason(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
            fake.die(status.name, 137, oom=True)
            with anyio.fail_after(5):
                await orch.wait(status.name, State.FAILED)
            assert (
                "OOM" in orch.status(status.name).reason
                or "memory" in orch.status(status.name).reason
            )

    async def test_one_failure_does_not_cancel_siblings(self, orchestrator, make_workspace) -> None:
        bad = make_workspace("bad")

        def on_start(c) -> None:
            if c.spec.labels.get(LABEL_WORKSPACE) == str(bad):
                c.console[c.boot_start :] = ["no markers"]
                docker.die(c.name, 1)

        docker = FakeDocker(on_start=on_start)
        good = [make_workspace(f"good{i}") for i in range(3)]
        outcome: dict[str, str] = {}
        async with orchestrator(docker) as orch:
            async with anyio.create_task_group() as tg:
                for path in [bad, *good]:

                    async def one(p: Path = path) -> None:
                        try:
                            outcome[p.name] = (await orch.up(p)).state
                        except WorkspaceFailed as exc:
                            outcome[p.name] = f"failed: {exc}"

                    tg.start_soon(one)
        assert outcome["bad"].startswith("failed")
        assert all(outcome[f"good{i}"] == "sshd-ready" for i in range(3))

    async def test_booting_deadline_expiry_fails_with_timeout_reason(
        self, orchestrator, make_workspace
    ) -> None:
        docker = FakeDocker(boot=("systemd booting, no markers",))
        async with orchestrator(docker, timeouts={State.BOOTING: 0.2}) as orch:
            with pytest.raises(WorkspaceFailed, match="timed out"):
                await orch.up(make_workspace("slow"))

    async def test_up_recovers_a_running_workspace_whose_probe_failed(
        self, make_workspace, fake, tmp_path
    ) -> None:
        from containai.orchestrator import open_orchestrator
        from containai.orchestrator._journal import Journal
        from containai.orchestrator.testing import FakeSSH

        ssh = FakeSSH(fake)
        ws = make_workspace("flaky")
        async with open_orchestrator(
            docker=fake,
            ssh=ssh,
            jitter=0.0,
            journal=Journal(tmp_path / "j"),
            timeouts={State.INIT_DONE: 0.3},
        ) as orch:
            ssh.refuse.update(range(2300, 2501))
            with pytest.raises(WorkspaceFailed, match="timed out in init-done"):
                await orch.up(ws)
            ssh.refuse.clear()
            status = await orch.up(ws)
        assert status.state == "sshd-ready"
        assert len(fake.containers) == 1

    async def test_a_full_port_range_fails_clearly_and_leaves_no_container(
        self, orchestrator, make_workspace
    ) -> None:
        docker = FakeDocker(port_range=(2300, 2300))
        async with orchestrator(docker) as orch:
            first = await orch.up(make_workspace("one"))
            full = r"all 201 ports in 2300-2500 are in use; widen \[ssh\].port_range"
            with pytest.raises(WorkspaceFailed, match=full):
                await orch.up(make_workspace("two"))
        assert [c.name for c in docker.containers.values()] == [first.name]


class TestStopRemove:
    async def test_stop_then_up_restarts_the_same_container(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
            stopped = await orch.stop(status.name)
            assert stopped.state == "stopped"
            again = await orch.up(ws)
        assert again.name == status.name
        assert again.state == "sshd-ready"
        assert len(fake.containers) == 1

    async def test_stop_while_booting_ends_stopped(self, orchestrator, make_workspace) -> None:
        docker = FakeDocker(boot=("systemd booting",))
        ws = make_workspace("app")
        async with orchestrator(docker) as orch:
            async with anyio.create_task_group() as tg:
                booting = anyio.Event()
                tg.start_soon(_signal_on, orch, "booting", booting)
                await anyio.lowlevel.checkpoint()
                tg.start_soon(_up_ignoring_failure, orch, ws)
                await booting.wait()
                status = await orch.stop(str(ws))
            assert status.state == "stopped"

    async def test_remove_leaves_no_container_and_no_ssh_files(
        self, orchestrator, make_workspace, fake, isolated_home: Path
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
            await orch.remove(status.name)
            assert orch.workspaces() == []
        assert fake.containers == {}
        assert not (isolated_home / ".ssh" / "containai.d" / f"{status.name}.conf").exists()


async def _signal_on(orch, state: str, event: anyio.Event) -> None:
    async with orch.subscribe() as records:
        async for record in records:
            if record.to_state == state:
                event.set()
                return


async def _up_ignoring_failure(orch, ws: Path) -> None:
    try:
        await orch.up(ws)
    except WorkspaceFailed:
        pass


class TestSourceOfTruth:
    async def test_event_stream_drop_and_reconnect_misses_no_transition(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
            fake.drop_event_streams()
            fake.die(status.name, 9)  # happens while no stream is connected
            with anyio.fail_after(10):
                await orch.wait(status.name, State.FAILED)
            assert orch.statistics().reconnects >= 1
            assert "code 9" in orch.status(status.name).reason

    async def test_new_orchestrator_rebuilds_state_from_the_engine(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
        async with orchestrator() as fresh:
            await fresh.settled(within=5)
            rebuilt = fresh.status(status.name)
        assert rebuilt.state == "sshd-ready"
        assert rebuilt.workspace == str(ws)

    async def test_a_rebuilt_machine_reports_a_death_but_not_its_replayed_boot(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
        seen: list[str] = []
        async with orchestrator() as fresh, fresh.subscribe() as records:
            fake.die(status.name, 9)  # at once, while its boot may still be replaying
            with anyio.fail_after(5):
                async for record in records:
                    seen.append(record.to_state)
                    if record.to_state == "failed":
                        break
        assert seen[-1] == "failed"
        assert "init-done" not in seen

    async def test_two_orchestrators_racing_on_one_path_end_with_one_container(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        results = []
        async with orchestrator() as a, orchestrator() as b:
            async with anyio.create_task_group() as tg:
                for orch in (a, b):

                    async def one(o=orch) -> None:
                        results.append(await o.up(ws))

                    tg.start_soon(one)
        assert len(fake.containers) == 1
        assert {r.name for r in results} == {next(iter(fake.containers.values())).name}

    async def test_container_killed_from_outside_is_reported(
        self, orchestrator, make_workspace, fake
    ) -> None:
        ws = make_workspace("app")
        async with orchestrator() as orch:
            status = await orch.up(ws)
            fake.die(status.name, 137)
            with anyio.fail_after(2):
                await orch.wait(status.name, State.FAILED)


class TestSessions:
    async def test_session_attaches_and_last_close_returns_to_sshd_ready(
        self, orchestrator, make_workspace
    ) -> None:
        ws = make_workspace("app")
        seen: list[str] = []
        back = anyio.Event()

        async def collect(orch) -> None:
            async for record in orch.events():
                seen.append(record.to_state)
                if record.to_state == "sshd-ready":
                    back.set()

        async with orchestrator() as orch, anyio.create_task_group() as tg:
            status = await orch.up(ws)
            tg.start_soon(collect, orch)
            await anyio.lowlevel.checkpoint()
            async with orch.session(status.name), orch.session(status.name):
                await orch.wait(status.name, State.ATTACHED)
                assert orch.status(status.name).state == "attached"
            with anyio.fail_after(2):
                await back.wait()
            tg.cancel_scope.cancel()
        assert seen == ["attached", "sshd-ready"]


async def test_statistics_count_events_and_published(orchestrator, make_workspace) -> None:
    async with orchestrator() as orch:
        await orch.up(make_workspace("app"))
        stats = orch.statistics()
    assert stats.workspaces == 1
    assert stats.by_state == {"sshd-ready": 1}
    assert stats.published == 4
    assert stats.docker_events >= 2


def test_marker_constant_is_what_units_print() -> None:
    assert MARKER_INIT_DONE == "containai-marker: init-done"


class TestImages:
    async def test_new_workspaces_use_the_richest_image_present(
        self, orchestrator, make_workspace
    ) -> None:
        from containai._defaults import image_ref

        docker = FakeDocker()
        docker.images = {image_ref("base"), image_ref("sdks")}
        async with orchestrator(docker) as orch:
            await orch.up(make_workspace("app"))
        (container,) = docker.containers.values()
        assert container.spec.image == image_ref("sdks")

    async def test_no_cai_image_is_a_clear_error(self, orchestrator, make_workspace) -> None:
        from containai.fsm import ImageError

        docker = FakeDocker()
        docker.images = {"debian:bookworm"}
        async with orchestrator(docker) as orch:
            with pytest.raises(ImageError, match="cai image build"):
                await orch.up(make_workspace("app"))
        assert docker.containers == {}
