"""Turning command-line targets (paths, ``--container`` names, ``--all``) into workspaces."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from containai.fsm._errors import UsageError

if TYPE_CHECKING:
    from containai.orchestrator import Orchestrator


def resolve_targets(
    orch: Orchestrator,
    paths: list[Path] | None,
    containers: list[str] | None,
    all_: bool,
    *,
    default_cwd: bool = True,
) -> list[str]:
    """Return the container names the command acts on.

    Raises:
        UsageError: ``--all`` combined with explicit targets.
        ContainerGone: a path or name has no workspace container.
    """
    if all_:
        if paths or containers:
            raise UsageError("--all cannot be combined with paths or --container")
        return [w.name for w in orch.workspaces()]
    refs: list[str] = [str(p) for p in paths or []] + list(containers or [])
    if not refs and default_cwd:
        refs = [str(Path.cwd())]
    names: list[str] = []
    for ref in refs:
        name = orch.status(ref).name
        if name not in names:
            names.append(name)
    return names
