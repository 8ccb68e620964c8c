"""Container names, collision suffixes, hostnames and the labels every container carries.

The name is ``{repo}-{branch_leaf}``, at most 24 characters, a pure function of the workspace
directory's name and its git branch (the reference's ``_containai_container_name``). The
hostname is the name made RFC 1123-safe. Everything here is pure except :func:`git_branch` (one
``git`` subprocess) and :func:`owner` (the password database).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from containai import __version__
from containai._defaults import (
    LABEL_DATA_VOLUME,
    LABEL_INNER_DOCKER,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_OWNER,
    LABEL_SSH_PORT_RANGE,
    LABEL_VERSION,
    LABEL_WORKSPACE,
)
from containai.fsm._errors import NameCollision

if TYPE_CHECKING:

    from containai.model._workspace import WorkspaceSpec

MAX_NAME = 24
MAX_SUFFIX = 99
MAX_HOSTNAME = 63
#: Shown when the workspace is not inside a git work tree (or git is not installed).
NOGIT = "nogit"
#: Shown when HEAD is detached.
DETACHED = "detached"

_NOT_NAME = re.compile(r"[^a-z0-9-]")
_DASHES = re.compile(r"-{2,}")


def _clean(part: str, fallback: str) -> str:
    part = _NOT_NAME.sub("", part.lower().replace("/", "-"))
    return _DASHES.sub("-", part).strip("-") or fallback


def compose_name(repo: str, branch: str) -> str:
    """The container name for a workspace directory called ``repo`` on branch ``branch``.

    Only the branch's last ``/`` segment is used. Each part is lowercased, characters outside
    ``[a-z0-9-]`` are dropped (``_`` and ``.`` too), runs of ``-`` collapse and edge ``-`` are
    trimmed; an empty part becomes ``repo`` / ``branch``. While the parts exceed 23 characters
    together the longer one (the repo on a tie) loses its last character. The result is at most
    24 characters and matches ``[a-z0-9]([a-z0-9-]*[a-z0-9])?``.

    Example: ``compose_name("MyRepo", "feature/One") == "myrepo-one"``.
    """
    r = _clean(repo, "repo")
    b = _clean(branch.rsplit("/", 1)[-1], "branch")
    budget = MAX_NAME - 1
    while len(r) + len(b) > budget:  # the longer part has at least 12 characters here
        if len(r) >= len(b):
            r = r[:-1]
        else:
            b = b[:-1]
    # Trimming can expose a '-' at the cut; a part is never all '-' (edges were trimmed).
    return f"{r.rstrip('-')}-{b.rstrip('-')}"


def git_branch(workspace: Path) -> str:
    """The branch checked out in ``workspace``: ``detached`` or ``nogit`` when there is none.

    Read from the repository's ``HEAD`` file (a symbolic ref names the branch, also an unborn
    one; an object id means detached), which costs no process: on the path of every ``cai up``,
    and sixteen ``git`` processes at once are noticeable on a small host. Layouts this does not
    recognise are left to ``git symbolic-ref``.
    """
    head = _head_file(workspace)
    if head is None:
        return NOGIT
    try:
        text = head.read_text().strip()
    except OSError:
        return _git_symbolic_ref(workspace)
    if text.startswith("ref:"):
        ref = text[4:].strip()
        for prefix in ("refs/heads/", "refs/"):
            if ref.startswith(prefix):
                return ref[len(prefix) :] or DETACHED
        return _git_symbolic_ref(workspace)
    return DETACHED


def _head_file(workspace: Path) -> Path | None:
    """``HEAD`` of the repository containing ``workspace`` (a ``.git`` directory, or a ``.git``
    file pointing elsewhere as in worktrees and submodules), or None outside any repository."""
    for directory in (workspace, *workspace.parents):
        dotgit = directory / ".git"
        if dotgit.is_dir():
            return dotgit / "HEAD"
        if dotgit.is_file():
            try:
                line = dotgit.read_text().strip()
            except OSError:
                return None
            if line.startswith("gitdir:"):
                gitdir = Path(line[7:].strip())
                return (gitdir if gitdir.is_absolute() else directory / gitdir) / "HEAD"
            return None
    return None


def _git_symbolic_ref(workspace: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        proc = subprocess.run(
            ["git", "-C", str(workspace), "symbolic-ref", "--quiet", "--short", "HEAD"],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return NOGIT
    if proc.returncode == 0:
        return proc.stdout.strip() or DETACHED
    if proc.returncode == 1:  # inside a repository, but HEAD is not a symbolic ref
        return DETACHED
    return NOGIT


def container_name(workspace: Path) -> str:
    """The base container name of ``workspace`` (an absolute, resolved directory)."""
    return compose_name(workspace.name, git_branch(workspace))


def suffixed(base: str, n: int) -> str:
    """The ``n``-th candidate name for ``base`` when names are taken: ``base`` itself for 1,
    then ``base-2`` … ``base-99``, with ``base`` shortened to keep 24 characters.

    Raises:
        NameCollision: ``n`` is above 99.
        ValueError: ``n`` is below 1.
    """
    if n < 1:
        raise ValueError(f"suffix number must be at least 1, got {n}")
    if n == 1:
        return base
    if n > MAX_SUFFIX:
        raise NameCollision(
            f"too many container name collisions for {base} (-2 to -{MAX_SUFFIX} are taken); "
            "remove unused containers or pass --container NAME"
        )
    suffix = f"-{n}"
    return base[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def sanitize_hostname(name: str) -> str:
    """``name`` as an RFC 1123 hostname label (the reference's ``_cai_sanitize_hostname``).

    Lowercase, ``_`` becomes ``-``, other characters outside ``[a-z0-9-]`` are dropped, runs of
    ``-`` collapse, edge ``-`` are trimmed, at most 63 characters; empty becomes ``container``.

    Example: ``sanitize_hostname("my_workspace-main") == "my-workspace-main"``.
    """
    host = _NOT_NAME.sub("", name.lower().replace("_", "-"))
    host = _DASHES.sub("-", host).strip("-")
    return host[:MAX_HOSTNAME].rstrip("-") or "container"


def reset_volume_name(repo: str, branch: str, stamp: int) -> str:
    """A new data volume's name for ``--reset``: ``{repo}-{branch}-{stamp}`` (reference §3.6).

    ``repo`` and ``branch`` are lowercased with characters outside ``[a-z0-9-]`` turned into
    ``-`` (runs collapsed, edges trimmed); ``stamp`` is typically ``time.time_ns()``. The result
    is a valid volume name of at most 255 characters and never the shared default volume.
    """
    parts = []
    for part, fallback in ((repo, "repo"), (branch, "branch")):
        part = _DASHES.sub("-", _NOT_NAME.sub("-", part.lower())).strip("-")
        parts.append(part or fallback)
    tail = f"-{stamp}"
    head = f"{parts[0]}-{parts[1]}"[: 255 - len(tail)].rstrip("-")
    return head + tail


def owner() -> str:
    """The invoking user's name (the ``sudo`` caller's when run through sudo), else the uid."""
    uid = os.getuid()
    if uid == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def workspace_labels(spec: WorkspaceSpec, name: str) -> dict[str, str]:
    """The labels a workspace's container carries: enough for reconcile and garbage collection.

    Args:
        spec: the resolved workspace.
        name: the container's actual name (``spec.name`` or a suffixed variant).
    """
    start, end = spec.port_range
    return {
        LABEL_MANAGED: "true",
        LABEL_WORKSPACE: spec.path,
        LABEL_NAME: name,
        LABEL_VERSION: __version__,
        LABEL_OWNER: owner(),
        LABEL_DATA_VOLUME: spec.data_volume,
        LABEL_SSH_PORT_RANGE: f"{start}-{end}",
        LABEL_INNER_DOCKER: "true" if spec.inner_docker else "false",
    }
