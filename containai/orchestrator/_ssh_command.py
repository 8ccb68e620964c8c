"""The remote command line cai runs in a workspace: the workspace directory, a login shell."""

from __future__ import annotations

import shlex

from containai._defaults import WORKSPACE_MOUNT


def remote_command(argv: list[str]) -> str:
    """Run ``argv`` in the workspace directory through a login shell (PATH and env from init);
    no argv means an interactive login shell."""
    inner = shlex.join(argv) if argv else "exec bash -l"
    return f"cd {WORKSPACE_MOUNT} && exec bash -lc {shlex.quote(inner)}"
