"""Session markers shared by cai processes: one file per open session under the XDG state dir,
so ``cai ps`` in one process shows ``attached`` while ``cai shell`` runs in another.

A marker is ``<state>/sessions/<container>/<pid>-<id>``; markers of dead processes are stale
and removed when seen. Plain files: cheap, and nothing to clean after a crash but stale files.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from containai._defaults import state_home

if TYPE_CHECKING:
    from pathlib import Path


def _dir(container: str) -> Path:
    return state_home() / "sessions" / container


def open_marker(container: str, session_id: str) -> Path:
    """Record an open session; returns the marker to pass to :func:`close_marker`."""
    directory = _dir(container)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{os.getpid()}-{session_id}"
    path.touch(mode=0o600)
    return path


def close_marker(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def open_sessions(container: str) -> int:
    """How many sessions some live cai process holds open on ``container``."""
    count = 0
    try:
        markers = list(_dir(container).iterdir())
    except FileNotFoundError:
        return 0
    for marker in markers:
        pid_text = marker.name.split("-", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            count += 1
        else:
            close_marker(marker)
    return count


def forget(container: str) -> None:
    """Drop every marker of a removed container."""
    directory = _dir(container)
    for marker in list(directory.glob("*")):
        close_marker(marker)
    with contextlib.suppress(OSError):
        directory.rmdir()
