"""The async engine: supervisors, event routing, reconcile, and the embedding API.

Example:
    async with open_orchestrator() as orch:
        ws = await orch.up("~/src/project")
        await orch.wait(ws.name, "sshd-ready")

Exports resolve lazily (PEP 562) so importing a submodule such as the adapters, or running
``cai --help``, does not pull in the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from containai.orchestrator._batch import BatchItem as BatchItem
    from containai.orchestrator._batch import BatchResult as BatchResult
    from containai.orchestrator._journal import Journal as Journal
    from containai.orchestrator._orchestrator import Orchestrator as Orchestrator
    from containai.orchestrator._orchestrator import default_parallel as default_parallel
    from containai.orchestrator._orchestrator import open_orchestrator as open_orchestrator
    from containai.orchestrator._ports import ContainerView as ContainerView
    from containai.orchestrator._ports import DockerPort as DockerPort
    from containai.orchestrator._ports import SSHPort as SSHPort
    from containai.orchestrator._ports import SSHTarget as SSHTarget
    from containai.orchestrator._status import Statistics as Statistics
    from containai.orchestrator._status import WorkspaceStatus as WorkspaceStatus
    from containai.orchestrator._supervisor import WorkspaceFailed as WorkspaceFailed

_EXPORTS = {
    "BatchItem": "_batch",
    "BatchResult": "_batch",
    "ContainerView": "_ports",
    "DockerPort": "_ports",
    "Journal": "_journal",
    "Orchestrator": "_orchestrator",
    "SSHPort": "_ports",
    "SSHTarget": "_ports",
    "Statistics": "_status",
    "WorkspaceFailed": "_supervisor",
    "WorkspaceStatus": "_status",
    "default_parallel": "_orchestrator",
    "open_orchestrator": "_orchestrator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"containai.orchestrator.{module}"), name)
