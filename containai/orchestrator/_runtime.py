"""The runtime policy as data: which OCI runtime a container gets and what its HostConfig needs.

Pure functions, no I/O. The orchestrator merges :func:`host_config` into its create request (it
adds Tty, the published SSH port, mounts, limits and labels itself).

Theory of operation. systemd as PID 1 needs a writable ``/run`` and ``/run/lock`` (tmpfs) and a
cgroup tree it can see:

- ``sysbox-runc`` virtualises ``/proc``, ``/sys`` and the cgroup tree and maps the container's
  root to an unprivileged host user, so it needs nothing else, and inner Docker works unprivileged.
- ``runc`` on a cgroup v1 (or hybrid) host: systemd needs the host's ``/sys/fs/cgroup`` bound
  read-only, or it fails with "Failed to create /init.scope control group" (measured).
- ``runc`` on a cgroup v2 host: a private cgroup namespace, no bind.

Rules: never ``Privileged`` unless the runtime is runc *and* inner Docker was explicitly requested
(runc gives a nested dockerd no other way to work); never the host's Docker socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from containai.fsm._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable

SYSBOX = "sysbox-runc"
RUNC = "runc"
AUTO = "auto"

#: What runc instead of Sysbox means, in one sentence (for ``cai doctor`` and ``cai setup``).
REDUCED_ISOLATION_SENTENCE = (
    "Reduced isolation: without Sysbox, containers run under runc, where a container's root is "
    "the host's root with Docker's default capabilities; install Sysbox for isolation."
)

#: Why inner Docker under runc is an explicit opt-in (for the flag's help and warnings).
PRIVILEGED_RISK_SENTENCE = (
    "Inner Docker under runc needs --privileged: the container's root can then take over the "
    "host; use Sysbox to run inner Docker unprivileged."
)

_SYSTEMD_TMPFS = {"/run": "rw,nosuid,nodev,mode=755", "/run/lock": "rw,nosuid,nodev,noexec"}
_CGROUP_V1_BIND = "/sys/fs/cgroup:/sys/fs/cgroup:ro"
_HOST_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "containai-docker.sock")


def choose_runtime(wanted: str, available: Iterable[str]) -> str:
    """Pick the OCI runtime for new containers.

    Args:
        wanted: ``"auto"`` (or empty) for the secure default, or a runtime name.
        available: the runtimes the engine reports (``docker info`` ``Runtimes``).

    Returns:
        ``sysbox-runc`` when ``wanted`` is auto and the engine has it, else ``runc``; a named
        runtime as given.

    Raises:
        ConfigError: a named runtime the engine does not have.
    """
    names = set(available)
    if wanted in ("", AUTO):
        return SYSBOX if SYSBOX in names else RUNC
    if wanted not in names:
        have = ", ".join(sorted(names)) or "none"
        raise ConfigError(f"runtime {wanted!r} is not available on the engine (it has: {have})")
    return wanted


def isolation(runtime: str) -> str:
    """``"sysbox"`` under Sysbox, ``"reduced"`` under any other runtime."""
    return "sysbox" if runtime == SYSBOX else "reduced"


def needs_privileged(*, runtime: str, inner_docker: bool) -> bool:
    """Only runc with inner Docker explicitly requested runs privileged."""
    return inner_docker and runtime != SYSBOX


def host_config(*, runtime: str, cgroup_version: int, inner_docker: bool) -> dict[str, object]:
    """The HostConfig pieces a system container needs under ``runtime``.

    Args:
        runtime: the OCI runtime the container will use (see :func:`choose_runtime`).
        cgroup_version: the engine's ``CgroupVersion`` (1 for v1 and hybrid hosts, 2 for unified).
        inner_docker: the user explicitly asked for a Docker daemon inside the container.

    Returns:
        A fresh dict of Docker HostConfig fields: ``Tmpfs``, and per runtime and cgroup version
        ``Binds`` (read-only cgroup tree) or ``CgroupnsMode``, and ``Privileged`` only for
        inner Docker under runc. The caller merges ``Binds`` with its own mounts.
    """
    config: dict[str, object] = {"Tmpfs": dict(_SYSTEMD_TMPFS)}
    if runtime == SYSBOX:
        return config  # Sysbox virtualises the cgroup tree and /proc, /sys itself
    privileged = needs_privileged(runtime=runtime, inner_docker=inner_docker)
    if cgroup_version >= 2:
        config["CgroupnsMode"] = "private"
    elif not privileged:
        # Privileged containers get the cgroup tree mounted read-write (a nested dockerd needs
        # that); everyone else sees it read-only, which is all systemd needs to boot.
        config["Binds"] = [_CGROUP_V1_BIND]
    if privileged:
        config["Privileged"] = True
    return config


def host_socket_mounts(binds: Iterable[str]) -> list[str]:
    """The binds in ``binds`` that would expose a host Docker socket (must be empty)."""
    return [b for b in binds if any(s in b.split(":", 1)[0] for s in _HOST_SOCKETS)]
