"""The base image boots for real: systemd reaches ``running``, the readiness markers reach the log
stream, sshd is key-only, and the runtime policy keeps containers unprivileged.

Two containers are booted once per module (through the engine API, with the HostConfig from
``containai.orchestrator._runtime``) and shared by the tests: ``full`` with a named data volume,
a workspace bind and cai's environment; ``bare`` with no mounts at all. Both publish 22/tcp on
127.0.0.1 with an ephemeral host port, carry the label ``containai.test=1`` and are removed
(with the volume) at module teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import aiohttp
import anyio
import msgspec
import pytest

from containai._defaults import (
    DATA_MOUNT,
    ENGINE_HOST,
    ENGINE_SOCKET,
    MARKER_INIT_DONE,
    MARKER_SSHD_READY,
    WORKSPACE_MOUNT,
    image_ref,
)
from containai.orchestrator._runtime import choose_runtime, host_config

pytestmark = [pytest.mark.docker, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

IMAGE = image_ref("base")
BOOT_TIMEOUT = 90.0
TEST_LABELS = {"containai.test": "1"}
VOLUME_DIRS = (
    "claude",
    "config/gh",
    "config/git",
    "config/tmux",
    "gemini",
    "copilot",
    "codex",
    "shell/.bashrc.d",
    "vscode-server",
)


class Booted(msgspec.Struct, kw_only=True):
    id: str
    name: str
    ssh_port: int
    log: str  # the console output up to and including the sshd-ready marker
    seconds_to_sshd_ready: float  # from the create request


class Boot(msgspec.Struct, kw_only=True):
    full: Booted
    bare: Booted
    volume: str
    host_workspace: str


# -- engine and image -------------------------------------------------------------------------
async def _problem() -> str | None:
    if not os.path.exists(ENGINE_SOCKET):
        return f"the cai engine socket {ENGINE_SOCKET} is missing (run `sudo cai setup`)"
    docker = aiodocker.Docker(url=ENGINE_HOST)
    try:
        try:
            await docker.images.inspect(IMAGE)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return f"image {IMAGE} is missing (run `sudo cai image build`)"
            return f"the cai engine at {ENGINE_HOST} does not answer: {exc}"
    except OSError as exc:
        return f"the cai engine at {ENGINE_HOST} does not answer: {exc}"
    finally:
        await docker.close()
    return None


def _need_engine() -> None:
    problem = anyio.run(_problem, backend="asyncio")
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real engine and base image: {problem}")
        pytest.skip(problem)


# -- booting ----------------------------------------------------------------------------------
async def _boot(
    docker: aiodocker.Docker, name: str, *, env: dict[str, str], binds: list[str]
) -> Booted:
    info = await docker.system.info()
    runtime = choose_runtime("auto", (info.get("Runtimes") or {}).keys())
    extra = host_config(
        runtime=runtime, cgroup_version=int(info.get("CgroupVersion") or 1), inner_docker=False
    )
    config = {
        "Image": IMAGE,
        "Hostname": name,
        "Labels": TEST_LABELS,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Tty": True,
        "ExposedPorts": {"22/tcp": {}},
        "HostConfig": {
            **extra,
            "Runtime": runtime,
            "Binds": [*binds, *extra.get("Binds", [])],  # type: ignore[list-item]
            "PortBindings": {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
        },
    }
    t0 = time.monotonic()
    container = await docker.containers.create(config, name=name)
    await container.start()
    seen: list[str] = []
    # aiodocker's log(follow=True) leaves its connection open when left early; read the
    # stream (raw, as the container has a TTY) and close the response ourselves.
    with anyio.fail_after(BOOT_TIMEOUT):
        async with docker._query(
            f"containers/{container.id}/logs",
            method="GET",
            params={"stdout": "1", "stderr": "1", "follow": "1"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None, connect=5),
        ) as response:
            try:
                async for raw_line in response.content:
                    seen.append(raw_line.decode(errors="replace"))
                    if MARKER_SSHD_READY in seen[-1]:
                        break
            finally:
                response.close()
    seconds = time.monotonic() - t0
    raw = await container.show()
    port = int(raw["NetworkSettings"]["Ports"]["22/tcp"][0]["HostPort"])
    return Booted(
        id=container.id,
        name=name,
        ssh_port=port,
        log="".join(seen).replace("\r", ""),
        seconds_to_sshd_ready=seconds,
    )


async def _boot_both(tag: str, volume: str, workspace: Path, host_ws: str) -> Boot:
    docker = aiodocker.Docker(url=ENGINE_HOST)
    try:
        await docker.volumes.create({"Name": volume, "Labels": TEST_LABELS})
        results: dict[str, Booted] = {}

        async def boot(key: str, **kw: object) -> None:
            results[key] = await _boot(docker, f"cai-test-boot-{key}-{tag}", **kw)  # type: ignore[arg-type]

        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: boot(
                    "full",
                    env={
                        "CAI_HOST_WORKSPACE": host_ws,
                        "CAI_INNER_DOCKER": "0",
                        "CAI_ENV_CAI_TEST_VALUE": "it's $HOME; `x`",
                        "TZ": "UTC",
                    },
                    binds=[f"{workspace}:{WORKSPACE_MOUNT}", f"{volume}:{DATA_MOUNT}"],
                )
            )
            tg.start_soon(lambda: boot("bare", env={}, binds=[]))
        return Boot(
            full=results["full"], bare=results["bare"], volume=volume, host_workspace=host_ws
        )
    finally:
        await docker.close()


async def _teardown(tag: str, volume: str) -> None:
    docker = aiodocker.Docker(url=ENGINE_HOST)
    try:
        for key in ("full", "bare"):
            try:
                await docker.containers.container(f"cai-test-boot-{key}-{tag}").delete(
                    force=True, v=True
                )
            except aiodocker.DockerError:
                pass
        try:
            await (await docker.volumes.get(volume)).delete()  # type: ignore[no-untyped-call]
        except aiodocker.DockerError:
            pass
    finally:
        await docker.close()


@pytest.fixture(scope="module")
def boot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boot]:
    _need_engine()
    tag = uuid.uuid4().hex[:8]
    volume = f"cai-test-boot-{tag}"
    workspace = tmp_path_factory.mktemp("workspace")
    (workspace / "README").write_text("boot test\n")
    host_ws = f"/tmp/cai-test-host/{tag}/project"  # a path the container links to the mount
    try:
        yield anyio.run(_boot_both, tag, volume, workspace, host_ws, backend="asyncio")
    finally:
        anyio.run(_teardown, tag, volume, backend="asyncio")


# -- helpers ----------------------------------------------------------------------------------
async def _exec(container_id: str, *cmd: str, user: str = "root") -> tuple[int, str]:
    docker = aiodocker.Docker(url=ENGINE_HOST)
    try:
        container = docker.containers.container(container_id)
        exe = await container.exec(list(cmd), user=user, stdout=True, stderr=True)
        out: list[bytes] = []
        async with exe.start(detach=False) as stream:
            while (msg := await stream.read_out()) is not None:
                out.append(msg.data)
        code = (await exe.inspect())["ExitCode"]
        return int(code), b"".join(out).decode(errors="replace")
    finally:
        await docker.close()


async def _system_state(booted: Booted) -> str:
    _, state = await _exec(booted.id, "timeout", "60", "systemctl", "is-system-running", "--wait")
    state = state.strip()
    if state != "running":
        _, failed = await _exec(booted.id, "systemctl", "--failed", "--no-legend", "--plain")
        pytest.fail(f"{booted.name}: systemd is {state!r}; failed units:\n{failed}")
    return state


async def _ssh(port: int, user: str, *opts: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client (ssh) is not installed")
    argv = [
        "ssh", "-v", "-F", "/dev/null", "-p", str(port),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
        *opts, f"{user}@127.0.0.1", "true",
    ]  # fmt: skip
    with anyio.fail_after(30):
        done = await anyio.run_process(argv, check=False)
    return subprocess.CompletedProcess(
        argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode()
    )


def _offered(stderr: str) -> set[str]:
    methods: set[str] = set()
    for line in stderr.splitlines():
        if "Authentications that can continue:" in line:
            methods.update(line.rsplit(":", 1)[1].strip().split(","))
    return methods


# -- tests ------------------------------------------------------------------------------------
class TestBoot:
    async def test_boot_reaches_running_with_and_without_mounts(self, boot: Boot) -> None:
        assert await _system_state(boot.full) == "running"
        assert await _system_state(boot.bare) == "running"

    async def test_boot_pid1_is_systemd(self, boot: Boot) -> None:
        code, comm = await _exec(boot.full.id, "cat", "/proc/1/comm")
        assert (code, comm.strip()) == (0, "systemd")

    async def test_boot_markers_appear_in_the_log_stream_in_order(self, boot: Boot) -> None:
        for booted in (boot.full, boot.bare):
            lines = [line.strip() for line in booted.log.splitlines()]
            assert MARKER_INIT_DONE in lines, booted.log[-2000:]
            sshd = [i for i, line in enumerate(lines) if line.startswith(MARKER_SSHD_READY)]
            assert sshd, booted.log[-2000:]
            assert lines.index(MARKER_INIT_DONE) < sshd[0]
            # the sshd marker carries the host key that sshd presents
            code, pub = await _exec(booted.id, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
            assert code == 0
            announced = lines[sshd[0]][len(MARKER_SSHD_READY) :].strip()
            assert announced == " ".join(pub.split()[:2])
        print(
            f"create → sshd-ready marker: full {boot.full.seconds_to_sshd_ready:.2f} s, "
            f"bare {boot.bare.seconds_to_sshd_ready:.2f} s (booted in parallel)"
        )

    async def test_boot_inner_docker_is_skipped_not_failed(self, boot: Boot) -> None:
        code, out = await _exec(
            boot.full.id, "systemctl", "show", "docker.service", "-p", "ConditionResult,ActiveState"
        )
        assert code == 0
        assert "ConditionResult=no" in out, out
        assert "ActiveState=inactive" in out, out
        code, _ = await _exec(boot.full.id, "test", "-e", "/etc/containai/inner-docker-enabled")
        assert code == 1


class TestSecurity:
    async def test_host_keys_differ_between_containers(self, boot: Boot) -> None:
        prints = []
        for booted in (boot.full, boot.bare):
            code, out = await _exec(
                booted.id, "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"
            )
            assert code == 0, out
            prints.append(out.split()[1])
        assert prints[0] != prints[1]

    async def test_sshd_offers_only_publickey_and_refuses_passwords(self, boot: Boot) -> None:
        result = await _ssh(
            boot.full.ssh_port,
            "agent",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
        )
        assert result.returncode == 255, result.stderr
        assert _offered(result.stderr) == {"publickey"}, result.stderr
        assert "Permission denied (publickey)" in result.stderr

    async def test_sshd_refuses_root_even_with_an_authorized_key(
        self, boot: Boot, tmp_path: Path
    ) -> None:
        """The same key logs in as agent and is refused for root: root is refused by policy."""
        if shutil.which("ssh-keygen") is None:
            pytest.skip("ssh-keygen is not installed")
        key = tmp_path / "id_ed25519"
        await anyio.run_process(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        pub = (tmp_path / "id_ed25519.pub").read_text().strip()
        script = (
            "set -e; for h in /root /home/agent; do install -d -m 700 $h/.ssh; "
            f"echo '{pub}' >$h/.ssh/authorized_keys; chmod 600 $h/.ssh/authorized_keys; done; "
            "chown -R agent:agent /home/agent/.ssh"
        )
        code, out = await _exec(boot.bare.id, "sh", "-c", script)
        assert code == 0, out
        ident = ("-o", "IdentitiesOnly=yes", "-i", str(key))
        agent = await _ssh(boot.bare.ssh_port, "agent", *ident)
        assert agent.returncode == 0, agent.stderr
        root = await _ssh(boot.bare.ssh_port, "root", *ident)
        assert root.returncode == 255
        assert "Permission denied" in root.stderr

    async def test_sshd_allows_agent_forwarding(self, boot: Boot) -> None:
        code, out = await _exec(boot.full.id, "sshd", "-T")
        assert code == 0, out
        settings = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        assert settings["allowagentforwarding"] == "yes"
        assert settings["passwordauthentication"] == "no"
        assert settings["kbdinteractiveauthentication"] == "no"
        assert settings["permitrootlogin"] == "no"

    async def test_containers_are_unprivileged_without_the_docker_socket(self, boot: Boot) -> None:
        docker = aiodocker.Docker(url=ENGINE_HOST)
        try:
            for booted in (boot.full, boot.bare):
                raw = await docker.containers.container(booted.id).show()
                assert raw["HostConfig"]["Privileged"] is False
                sources = [m.get("Source", "") + m.get("Name", "") for m in raw["Mounts"]]
                sources += raw["HostConfig"].get("Binds") or []
                assert not [s for s in sources if "docker.sock" in s], sources
        finally:
            await docker.close()


class TestWorkspaceSetup:
    async def test_data_volume_layout_is_made_and_owned_by_agent(self, boot: Boot) -> None:
        for booted in (boot.full, boot.bare):
            paths = [f"{DATA_MOUNT}/{d}" for d in VOLUME_DIRS]
            code, out = await _exec(booted.id, "stat", "-c", "%U %F %n", *paths)
            assert code == 0, out
            for line in out.splitlines():
                assert line.startswith("agent directory "), line

    async def test_data_volume_is_the_named_volume(self, boot: Boot) -> None:
        docker = aiodocker.Docker(url=ENGINE_HOST)
        try:
            raw = await docker.containers.container(boot.full.id).show()
        finally:
            await docker.close()
        mounts = {m["Destination"]: m for m in raw["Mounts"]}
        assert mounts[DATA_MOUNT]["Type"] == "volume"
        assert mounts[DATA_MOUNT]["Name"] == boot.volume

    async def test_home_links_point_into_the_volume(self, boot: Boot) -> None:
        code, out = await _exec(
            boot.full.id,
            "readlink",
            "/home/agent/.claude",
            "/home/agent/.config/gh",
            "/home/agent/.gitconfig",
        )
        assert code == 0, out
        assert out.split() == [
            f"{DATA_MOUNT}/claude",
            f"{DATA_MOUNT}/config/gh",
            f"{DATA_MOUNT}/config/git/gitconfig",
        ]

    async def test_login_environment_and_workspace_link(self, boot: Boot) -> None:
        code, out = await _exec(
            boot.full.id, "bash", "-lc", 'printf "%s" "$CAI_TEST_VALUE"', user="agent"
        )
        assert (code, out) == (0, "it's $HOME; `x`")
        code, out = await _exec(boot.full.id, "readlink", boot.host_workspace)
        assert (code, out.strip()) == (0, WORKSPACE_MOUNT)
        code, out = await _exec(boot.full.id, "cat", f"{boot.host_workspace}/README")
        assert (code, out) == (0, "boot test\n")

    async def test_git_trusts_the_workspace(self, boot: Boot) -> None:
        code, out = await _exec(
            boot.full.id, "git", "config", "--system", "--get-all", "safe.directory"
        )
        assert code == 0
        assert WORKSPACE_MOUNT in out.split()


class TestInitSafety:
    """containai-init treats the data volume as untrusted input (the agent user owns it)."""

    async def test_dotenv_is_parsed_as_data_never_run(self, boot: Boot) -> None:
        dotenv = "\n".join(
            [
                "# a comment",
                'export A_ONE="double $HOME"',
                "B_TWO='single `id`'",
                "C_THREE=plain value # trailing comment",
                "D_FOUR=$(touch /tmp/cai-pwned)",
                "PATH=/evil",
                "bad-name=x",
                "CAI_TEST_VALUE=from-dotenv",
                "no equals sign",
            ]
        )
        code, out = await _exec(
            boot.full.id, "sh", "-c", f"cat >{DATA_MOUNT}/.env <<'EOF'\n{dotenv}\nEOF", user="agent"
        )
        assert code == 0, out
        code, out = await _exec(boot.full.id, "/usr/local/lib/containai/init.sh")
        assert code == 0, out
        assert "refusing name 'PATH'" in out
        assert "refusing name 'bad-name'" in out
        script = 'printf "%s|" "$A_ONE" "$B_TWO" "$C_THREE" "$D_FOUR" "$CAI_TEST_VALUE" "$PATH"'
        code, out = await _exec(boot.full.id, "bash", "-lc", script, user="agent")
        assert code == 0, out
        values = out.split("|")
        assert values[:5] == [
            "double $HOME",
            "single `id`",
            "plain value",
            "$(touch /tmp/cai-pwned)",
            "it's $HOME; `x`",  # the container's CAI_ENV_ value wins over .env
        ]
        assert "/evil" not in values[5]
        code, _ = await _exec(boot.full.id, "test", "-e", "/tmp/cai-pwned")
        assert code == 1

    async def test_symlinks_in_the_volume_are_not_followed(self, boot: Boot) -> None:
        setup = (
            f"rm -rf {DATA_MOUNT}/codex && ln -s /etc {DATA_MOUNT}/codex && "
            f"rm -f {DATA_MOUNT}/.env && ln -s /etc/shadow {DATA_MOUNT}/.env"
        )
        code, out = await _exec(boot.bare.id, "sh", "-c", setup, user="agent")
        assert code == 0, out
        code, out = await _exec(boot.bare.id, "/usr/local/lib/containai/init.sh")
        assert code == 0, out
        assert f"{DATA_MOUNT}/codex is a symlink" in out
        assert f"{DATA_MOUNT}/.env is a symlink" in out
        code, out = await _exec(boot.bare.id, "stat", "-c", "%U", "/etc", "/etc/shadow")
        assert out.split() == ["root", "root"]
        code, out = await _exec(boot.bare.id, "cat", "/run/containai/env.sh")
        assert code == 0
        assert "root:" not in out
        # Put the layout back for any test that runs after this one.
        restore = f"rm -f {DATA_MOUNT}/codex {DATA_MOUNT}/.env"
        await _exec(boot.bare.id, "sh", "-c", restore, user="agent")
        code, out = await _exec(boot.bare.id, "/usr/local/lib/containai/init.sh")
        assert code == 0, out
