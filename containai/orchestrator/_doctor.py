"""``cai doctor``: checks of the host and the dedicated engine, as data.

Each check is a :class:`Check` (name, status, detail, one-line fix). :func:`diagnose` gathers them
into a :class:`Report`, whose JSON encoding is the stable ``cai doctor --json`` schema::

    {"schema": 1, "ok": bool, "isolation": "sysbox"|"reduced"|"unknown", "runtime": str,
     "checks": [{"name": str, "status": "OK"|"WARN"|"FAIL", "detail": str, "fix": str}]}

The engine is passed in as a port, so every check runs against a fake in tests.
"""

from __future__ import annotations

import enum
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import msgspec

from containai._defaults import (
    ENGINE_DATA_ROOT,
    ENGINE_HOST,
    IMAGE_LAYERS,
    SSH_PORT_RANGE,
    SYSBOX_RUNC,
    config_home,
    image_ref,
)
from containai.fsm._errors import CaiError
from containai.orchestrator._runtime import REDUCED_ISOLATION_SENTENCE, SYSBOX, isolation

if TYPE_CHECKING:
    from collections.abc import Callable

    from containai.orchestrator._ports import ContainerView, EngineInfo

SCHEMA = 1

SYSBOX_HINT = "install Sysbox (https://github.com/nestybox/sysbox), then `sudo cai setup`"

GIB = 1 << 30


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


class Check(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    status: Status
    detail: str
    fix: str = ""


class Report(msgspec.Struct, frozen=True, kw_only=True):
    schema: int
    ok: bool
    isolation: str
    runtime: str
    checks: list[Check]


class DoctorPort(Protocol):
    """The slice of :class:`~containai.orchestrator._ports.DockerPort` the doctor reads."""

    async def info(self) -> EngineInfo: ...

    async def image_exists(self, ref: str) -> bool: ...

    async def list_managed(self) -> list[ContainerView]: ...


class DoctorHost(msgspec.Struct, frozen=True, kw_only=True):
    """Host facts the checks read; tests point them elsewhere."""

    engine_host: str = ENGINE_HOST
    key: Path | None = None  # default: config_home() / "id_containai"
    sysbox_runc: Path = SYSBOX_RUNC
    data_root: Path = ENGINE_DATA_ROOT
    port_range: tuple[int, int] = SSH_PORT_RANGE
    proc_net: tuple[Path, ...] = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


async def diagnose(
    port: DoctorPort,
    *,
    host: DoctorHost | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> Report:
    """Run every check. Never raises for a broken engine: that is a FAIL in the report."""
    host = host or DoctorHost()
    checks: list[Check] = []
    info: EngineInfo | None = None
    try:
        with anyio.fail_after(15):
            info = await port.info()
    except (CaiError, TimeoutError) as exc:
        checks.append(
            Check(
                name="engine",
                status=Status.FAIL,
                detail=str(exc) or f"{host.engine_host} does not answer (timed out)",
                fix="sudo cai setup (engine log: /var/log/containai/dockerd.log)",
            )
        )
    if info is not None:
        checks.append(
            Check(
                name="engine",
                status=Status.OK,
                detail=f"Docker {info.version} at {host.engine_host}",
            )
        )
        checks += engine_checks(info, sysbox_installed=host.sysbox_runc.exists())
        checks += await image_checks(port)
    else:
        # the same names in the same order either way: the --json schema lists every check
        checks += [_unknown("runtime"), _unknown("isolation")]
        checks += [cgroup_check(local_cgroup_version()), kernel_check(os.uname().release)]
        checks += [_unknown(f"image-{layer}") for layer in IMAGE_LAYERS]
    checks.append(await ssh_client_check(which))
    checks.append(key_check(host.key or config_home() / "id_containai"))
    checks.append(await ports_check(port if info is not None else None, host))
    checks.append(disk_check(Path(info.data_root) if info and info.data_root else host.data_root))
    runtime = info.default_runtime if info is not None else "unknown"
    return Report(
        schema=SCHEMA,
        ok=all(c.status != Status.FAIL for c in checks),
        isolation=isolation(runtime) if info is not None else "unknown",
        runtime=runtime,
        checks=checks,
    )


def _unknown(name: str) -> Check:
    return Check(
        name=name,
        status=Status.WARN,
        detail="not checked: the engine does not answer",
        fix="sudo cai setup",
    )


def engine_checks(info: EngineInfo, *, sysbox_installed: bool) -> list[Check]:
    """Runtime, isolation, cgroup version and kernel, from the engine's own report."""
    available = ", ".join(info.runtimes) or "none"
    if info.default_runtime not in info.runtimes:
        runtime = Check(
            name="runtime",
            status=Status.FAIL,
            detail=f"default {info.default_runtime!r} is not among the runtimes ({available})",
            fix="sudo cai setup",
        )
    elif sysbox_installed and info.default_runtime != SYSBOX:
        runtime = Check(
            name="runtime",
            status=Status.WARN,
            detail=f"Sysbox is installed but the default is {info.default_runtime} ({available})",
            fix="sudo cai setup",
        )
    else:
        runtime = Check(
            name="runtime",
            status=Status.OK,
            detail=f"default {info.default_runtime}; available: {available}",
        )
    if isolation(info.default_runtime) == "sysbox":
        iso_check = Check(
            name="isolation",
            status=Status.OK,
            detail="sysbox: user-namespaced system containers, inner Docker without --privileged",
        )
    else:
        iso_check = Check(
            name="isolation",
            status=Status.WARN,
            detail=REDUCED_ISOLATION_SENTENCE,
            fix=SYSBOX_HINT,
        )
    return [runtime, iso_check, cgroup_check(info.cgroup_version), kernel_check(info.kernel)]


def cgroup_check(version: int) -> Check:
    note = " (systemd in containers gets a read-only cgroup mount)" if version == 1 else ""
    return Check(name="cgroup", status=Status.OK, detail=f"cgroup v{version}{note}")


def local_cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> int:
    """2 on a unified hierarchy, else 1 (what the engine would report)."""
    return 2 if (root / "cgroup.controllers").exists() else 1


def kernel_check(release: str) -> Check:
    """Sysbox needs Linux 5.5 or newer; runc runs on anything Docker runs on."""
    parts = [int(p) for p in release.split("-")[0].split(".")[:2] if p.isdigit()]
    version = tuple(parts + [0] * (2 - len(parts)))
    if version < (5, 5):
        return Check(
            name="kernel",
            status=Status.WARN,
            detail=f"Linux {release}: Sysbox needs 5.5 or newer",
            fix="upgrade the kernel before installing Sysbox",
        )
    return Check(name="kernel", status=Status.OK, detail=f"Linux {release}")


async def image_checks(port: DoctorPort) -> list[Check]:
    """``base`` is required (FAIL); ``sdks`` and ``full`` are optional layers (WARN)."""
    checks = []
    for layer in IMAGE_LAYERS:
        ref = image_ref(layer)
        if await port.image_exists(ref):
            checks.append(Check(name=f"image-{layer}", status=Status.OK, detail=f"{ref} present"))
            continue
        checks.append(
            Check(
                name=f"image-{layer}",
                status=Status.FAIL if layer == "base" else Status.WARN,
                detail=f"{ref} missing",
                fix=f"sudo cai image build --layer {layer}",
            )
        )
    return checks


async def ssh_client_check(which: Callable[[str], str | None]) -> Check:
    ssh = which("ssh")
    if ssh is None:
        return Check(
            name="ssh-client",
            status=Status.FAIL,
            detail="no `ssh` on PATH (cai shell needs it)",
            fix="sudo apt-get install -y openssh-client",
        )
    version = "version unknown"
    with anyio.move_on_after(5):
        try:
            out = await anyio.run_process([ssh, "-V"], check=False)
        except OSError:
            pass
        else:
            version = (out.stderr or out.stdout).decode(errors="replace").strip().split(",")[0]
    return Check(name="ssh-client", status=Status.OK, detail=f"{ssh}: {version}")


def key_check(key: Path) -> Check:
    """The cai key must not be readable by group or others (ssh refuses such keys anyway)."""
    try:
        mode = key.stat().st_mode & 0o777
    except FileNotFoundError:
        return Check(
            name="ssh-key",
            status=Status.WARN,
            detail=f"{key} absent: created on first use",
        )
    if mode & 0o077:
        return Check(
            name="ssh-key",
            status=Status.FAIL,
            detail=f"{key} has mode {mode:04o}: readable or writable by others",
            fix=f"chmod 600 {key}",
        )
    return Check(name="ssh-key", status=Status.OK, detail=f"{key} (mode {mode:04o})")


async def ports_check(port: DoctorPort | None, host: DoctorHost) -> Check:
    """Free ports in the SSH range: not listening on the host and not held by a workspace."""
    lo, hi = host.port_range
    used = listening_ports(host.proc_net, lo, hi)
    if port is not None:
        try:
            used |= {
                c.ssh_port
                for c in await port.list_managed()
                if c.ssh_port is not None and lo <= c.ssh_port <= hi
            }
        except CaiError:
            pass
    total = hi - lo + 1
    free = total - len(used)
    detail = f"{free} of {total} free in {lo}-{hi}"
    if free <= 0:
        return Check(
            name="ssh-ports",
            status=Status.FAIL,
            detail=detail,
            fix="stop or remove workspaces you no longer use (cai ps; cai stop <path>)",
        )
    if free < max(5, total // 10):
        return Check(
            name="ssh-ports",
            status=Status.WARN,
            detail=detail,
            fix="stop or remove workspaces you no longer use",
        )
    return Check(name="ssh-ports", status=Status.OK, detail=detail)


def listening_ports(tables: tuple[Path, ...], lo: int, hi: int) -> set[int]:
    """TCP ports in ``lo..hi`` in LISTEN state on any address, from ``/proc/net/tcp*``."""
    ports: set[int] = set()
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":  # 0A = TCP_LISTEN
                continue
            number = int(fields[1].rsplit(":", 1)[1], 16)
            if lo <= number <= hi:
                ports.add(number)
    return ports


def disk_check(data_root: Path) -> Check:
    """Free space on the filesystem holding the data-root: FAIL under 2 GiB, WARN under 10."""
    probe = data_root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    detail = f"{usage.free / GIB:.1f} GiB free of {usage.total / GIB:.1f} GiB under {data_root}"
    fix = f"free space on the filesystem of {probe} (docker image prune, cai gc)"
    if usage.free < 2 * GIB:
        return Check(name="disk", status=Status.FAIL, detail=detail, fix=fix)
    if usage.free < 10 * GIB:
        return Check(name="disk", status=Status.WARN, detail=detail, fix=fix)
    return Check(name="disk", status=Status.OK, detail=detail)
