"""SSH readiness: how cai decides a workspace's sshd is ready.

A process *owns* the workspaces it brings up or opens sessions on: for those the ``sshd``
probe authorizes cai's key in the container (an append through the engine), reads the host
key the container generated, pins it, writes the OpenSSH config, and does a real handshake
against the pin. Workspaces a process only observes get a banner read on their published port:
no key, no files, no crypto, so observing many workspaces stays cheap. Every wait is a capped
exponential backoff that the sshd-ready console marker cuts short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from containai._defaults import AGENT_UID, SSH_HOST_PREFIX
from containai.fsm._errors import ConfigError, ContainerGone, HostKeyMismatch, SSHUnavailable
from containai.orchestrator import _sshfiles
from containai.orchestrator._backoff import Backoff
from containai.orchestrator._ports import SSHTarget

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from containai.orchestrator._ports import ContainerView, DockerPort, SSHPort
    from containai.orchestrator._supervisor import Supervisor

HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key.pub"
AUTHORIZED_KEYS = "/home/agent/.ssh/authorized_keys"
# Idempotent, append-only (O_APPEND writes of one short line do not interleave).
_AUTHORIZE = f"""set -e
umask 077
mkdir -p /home/agent/.ssh
touch {AUTHORIZED_KEYS}
grep -qxF "$1" {AUTHORIZED_KEYS} || printf '%s\\n' "$1" >> {AUTHORIZED_KEYS}
chown -R {AGENT_UID}:{AGENT_UID} /home/agent/.ssh
chmod 700 /home/agent/.ssh
chmod 600 {AUTHORIZED_KEYS}
"""


class Readiness:
    """The sshd and liveness probes of an orchestrator, and the SSH files they keep."""

    def __init__(
        self,
        docker: DockerPort,
        ssh: SSHPort,
        *,
        client_key: Callable[[], Awaitable[str]],
        key_path: Path,
    ) -> None:
        self.docker = docker
        self.ssh = ssh
        self._client_key = client_key
        self._public_key: str | None = None
        self.key_path = key_path

    async def public_key(self) -> str:
        """cai's public key line (the key pair is created on first use)."""
        if self._public_key is None:
            self._public_key = (await self._client_key()).strip()
        return self._public_key

    async def preload_key(self, name: str) -> None:
        """Write our key into a container that was just created and not started yet: one
        archive upload instead of an exec after boot, off the path to sshd-ready."""
        key = await self.public_key()
        await self.docker.put_file(
            name, AUTHORIZED_KEYS, (key + "\n").encode(), mode=0o600, uid=AGENT_UID
        )

    def target(self, sup: Supervisor, *, forward_agent: bool) -> SSHTarget:
        if sup.ssh_port is None:
            raise SSHUnavailable(f"{sup.name} has no published SSH port", container=sup.name)
        return SSHTarget(
            port=sup.ssh_port,
            key_path=str(self.key_path),
            known_hosts=str(_sshfiles.known_hosts_path()),
            forward_agent=forward_agent,
        )

    async def probe(
        self, sup: Supervisor, probe: str, nudge: anyio.Event, *, forward_agent: bool
    ) -> None:
        """Run one probe to its end: ``sshd`` (full for owned workspaces, a banner read for
        observed ones) or ``liveness``. Returns when ready; raises ``CaiError`` otherwise."""
        view = await self.docker.inspect(sup.name)
        sup.view = view
        if probe == "liveness":
            if view.status != "running":
                raise ContainerGone(f"{sup.name} is {view.status}", container=sup.name)
            sup.ssh_port = view.ssh_port
            if sup.verified:
                await self.ssh.probe(self.target(sup, forward_agent=forward_agent))
            else:
                await self.ssh.banner(self.target(sup, forward_agent=forward_agent))
            return
        if not sup.owned:
            await self._banner_probe(sup, view, nudge, forward_agent=forward_agent)
            return
        if not sup.key_injected:
            await self._authorize(sup.name, await self.public_key())
            sup.key_injected = True
        backoff = Backoff(initial=0.05, cap=1.0)
        pinned: tuple[int, str] | None = None
        while True:
            try:
                if view.ssh_port is None:
                    view = await self.docker.inspect(sup.name)
                    sup.view = view
                    if view.status != "running":
                        raise ContainerGone(f"{sup.name} is {view.status}", container=sup.name)
                    if view.ssh_port is None:
                        raise SSHUnavailable("no SSH port published yet")
                sup.ssh_port = view.ssh_port
                host_key = (await self.docker.read_file(sup.name, HOST_KEY_PATH)).decode().strip()
                if pinned != (view.ssh_port, host_key):
                    await anyio.to_thread.run_sync(self._pin, sup.name, view.ssh_port, host_key)
                    pinned = (view.ssh_port, host_key)
                await self.ssh.probe(self.target(sup, forward_agent=forward_agent))
                break
            except HostKeyMismatch:
                raise
            except (SSHUnavailable, ContainerGone) as exc:
                if isinstance(exc, ContainerGone) and "is " in str(exc):
                    raise
            with anyio.move_on_after(backoff.next_delay()):
                await nudge.wait()
        await anyio.to_thread.run_sync(self._write_config, sup.name, view.ssh_port, forward_agent)
        sup.verified = True

    async def _banner_probe(
        self, sup: Supervisor, view: ContainerView, nudge: anyio.Event, *, forward_agent: bool
    ) -> None:
        """Observed, not owned: sshd answers on the published port. No key, no files."""
        backoff = Backoff(initial=0.05, cap=1.0)
        while True:
            try:
                if view.ssh_port is None:
                    view = await self.docker.inspect(sup.name)
                    sup.view = view
                    if view.status != "running":
                        raise ContainerGone(f"{sup.name} is {view.status}", container=sup.name)
                    if view.ssh_port is None:
                        raise SSHUnavailable("no SSH port published yet")
                sup.ssh_port = view.ssh_port
                await self.ssh.banner(self.target(sup, forward_agent=forward_agent))
                return
            except SSHUnavailable:
                pass
            with anyio.move_on_after(backoff.next_delay()):
                await nudge.wait()

    async def _authorize(self, name: str, public_key: str) -> None:
        """Add our key to the agent's authorized_keys through the engine, keeping keys other
        cai users (other HOMEs, other processes) added: an append, never a rewrite."""
        code, output = await self.docker.exec(
            name, ["sh", "-c", _AUTHORIZE, "authorize", public_key.strip()]
        )
        if code != 0:
            raise SSHUnavailable(
                f"could not authorize cai's key in {name}: {output.decode(errors='replace')}",
                container=name,
            )

    def _pin(self, name: str, port: int, host_key: str) -> None:
        _sshfiles.pin_host_keys(f"{SSH_HOST_PREFIX}{name}", port, [host_key])

    def _write_config(self, name: str, port: int, forward_agent: bool) -> None:
        _sshfiles.write_host_config(name, port, key_path=self.key_path, forward_agent=forward_agent)
        try:
            _sshfiles.ensure_include()
        except ConfigError:
            pass  # an unwritable ~/.ssh/config: cai never needs it; `cai doctor` reports it

    def forget(self, name: str, port: int | None) -> None:
        """Remove the workspace's OpenSSH config and known_hosts entries."""
        _sshfiles.remove_host_config(name)
        _sshfiles.remove_host_keys(f"{SSH_HOST_PREFIX}{name}", port)
