"""Outputs of the machine: imperatives for the driver to carry out."""

from __future__ import annotations

import msgspec

from containai.fsm._lifecycle import Transition


class Effect(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every output of :class:`~containai.fsm.ContainerFSM`."""


class CreateContainer(Effect, frozen=True, tag="create-container"):
    pass


class StartContainer(Effect, frozen=True, tag="start-container"):
    pass


class RunProbe(Effect, frozen=True, tag="run-probe"):
    """Start a probe task. ``probe`` is ``"sshd"`` (key auth + pinned host key handshake) or
    ``"liveness"`` (a cheap re-check while the workspace is usable)."""

    probe: str


class CancelProbes(Effect, frozen=True, tag="cancel-probes"):
    pass


class StopContainer(Effect, frozen=True, tag="stop-container"):
    timeout: float


class Publish(Effect, frozen=True, tag="publish"):
    transition: Transition


AnyEffect = CreateContainer | StartContainer | RunProbe | CancelProbes | StopContainer | Publish
