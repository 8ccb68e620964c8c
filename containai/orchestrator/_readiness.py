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
from containai.fsm._errors import ConfigError, ContainerGone, SSHUnavailable
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


#: How long the full probe waits for the sshd-ready marker before knocking anyway.
_MARKER_GRACE = 5.0


class _NotYet(Exception):
    """Not ready yet, try again after the next pause (no port, no host key file yet)."""


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
        await self._full_probe(sup, view, nudge, forward_agent=forward_agent)

    async def _full_probe(
        self, sup: Supervisor, view: ContainerView, nudge: anyio.Event, *, forward_agent: bool
    ) -> None:
        """Owned: our key authorized, the host key pinned, a real handshake against the pin.

        The sshd-ready console marker carries the host key (``sup.host_key``), so the usual
        path costs no engine call at all; the key file is read through the engine only when no
        marker came (an image without it). A handshake refused after sshd is up adds our key
        through the engine once (an image that does not take ``CAI_AUTHORIZED_KEY``).
        """
        if not sup.key_injected:
            await self._authorize(sup.name, await self.public_key())
            sup.key_injected = True
        backoff = Backoff(initial=0.05, cap=1.0)
        pinned: tuple[int, str] | None = None
        authorized_again = False
        with anyio.move_on_after(_MARKER_GRACE):
            await nudge.wait()  # sshd is not up before its marker: don't knock before
        while True:
            try:
                view = await self._running_view(sup, view)
                assert view.ssh_port is not None
                host_key = sup.host_key or await self._read_host_key(sup.name)
                if pinned != (view.ssh_port, host_key):
                    await anyio.to_thread.run_sync(self._pin, sup.name, view.ssh_port, host_key)
                    pinned = (view.ssh_port, host_key)
                await self.ssh.probe(self.target(sup, forward_agent=forward_agent))
                break
            except _NotYet:
                pass
            except SSHUnavailable:
                if nudge.is_set() and not authorized_again:
                    await self._authorize(sup.name, await self.public_key())
                    authorized_again = True
            await self._pause(backoff, nudge)
        await anyio.to_thread.run_sync(self._write_config, sup.name, view.ssh_port, forward_agent)
        sup.verified = True

    async def _running_view(self, sup: Supervisor, view: ContainerView) -> ContainerView:
        """``view``, refreshed until the container runs with its SSH port published.

        Raises:
            ContainerGone: the container is not running.
            _NotYet: no port published yet.
        """
        if view.ssh_port is not None:
            sup.ssh_port = view.ssh_port
            return view
        view = await self.docker.inspect(sup.name)
        sup.view = view
        if view.status != "running":
            raise ContainerGone(f"{sup.name} is {view.status}", container=sup.name)
        if view.ssh_port is None:
            raise _NotYet
        sup.ssh_port = view.ssh_port
        return view

    async def _read_host_key(self, name: str) -> str:
        try:
            return (await self.docker.read_file(name, HOST_KEY_PATH)).decode().strip()
        except ContainerGone:
            raise _NotYet from None  # ssh-keygen.service has not run yet

    @staticmethod
    async def _pause(backoff: Backoff, nudge: anyio.Event) -> None:
        """The next backoff delay, cut short by the sshd-ready marker the first time only."""
        delay = backoff.next_delay()
        if nudge.is_set():
            await anyio.sleep(delay)
        else:
            with anyio.move_on_after(delay):
                await nudge.wait()

    async def _banner_probe(
        self, sup: Supervisor, view: ContainerView, nudge: anyio.Event, *, forward_agent: bool
    ) -> None:
        """Observed, not owned: sshd answers on the published port. No key, no files."""
        backoff = Backoff(initial=0.05, cap=1.0)
        while True:
            try:
                view = await self._running_view(sup, view)
                await self.ssh.banner(self.target(sup, forward_agent=forward_agent))
                return
            except (_NotYet, SSHUnavailable):
                pass
            await self._pause(backoff, nudge)

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
