"""Batch runs: one command (or agent) across many repositories, each in its own workspace.

Each input line is a local path or a git URL, optionally ``@branch``. URLs (and local repos
asked for at a branch) are cloned shallow into the run directory; every repo then gets its own
workspace through the orchestrator's limiter, the command runs over SSH in the workspace, its
output goes to log files, and one :class:`BatchResult` is produced as soon as it finishes.

Cancellation: cancelling a batch stops new starts; cleanup (stop and remove each workspace it
created) runs shielded, so an interrupted run leaves no containers behind.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import msgspec

from containai.fsm._errors import CaiError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from containai.orchestrator._orchestrator import Orchestrator

RESULT_SCHEMA = 1
_URL = re.compile(r"^(https?://|ssh://|git://|file://|[\w.-]+@[\w.-]+:)")


class BatchItem(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    source: str
    branch: str | None = None

    @property
    def key(self) -> str:
        """Identity of the item across runs (what ``--resume`` matches on)."""
        return f"{self.source}@{self.branch}" if self.branch else self.source

    @property
    def is_url(self) -> bool:
        return bool(_URL.match(self.source))


class BatchLineError(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    text: str
    message: str


class BatchResult(msgspec.Struct, frozen=True, kw_only=True, tag="result", tag_field="kind"):
    """One line of the results NDJSON. ``status``: ok (exit 0), failed (non-zero exit), or
    error (never got to run the command: clone or bring-up failed, or interrupted)."""

    v: int = RESULT_SCHEMA
    key: str
    source: str
    branch: str | None = None
    line: int = 0
    status: str
    exit_code: int | None = None
    state: str = ""
    workspace: str = ""
    container: str = ""
    started: float = 0.0
    ended: float = 0.0
    duration: float = 0.0
    stdout_log: str = ""
    stderr_log: str = ""
    error: str = ""


def parse_batch(text: str) -> tuple[list[BatchItem], list[BatchLineError]]:
    """Parse a batch file; blank lines and ``#`` comments are skipped, bad lines reported."""
    items: list[BatchItem] = []
    errors: list[BatchLineError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if any(c.isspace() for c in line):
            errors.append(BatchLineError(line=number, text=raw, message="one repository per line"))
            continue
        source, branch = _split_branch(line)
        item = BatchItem(line=number, source=source, branch=branch)
        if not item.is_url and not Path(source).expanduser().is_dir():
            errors.append(
                BatchLineError(line=number, text=raw, message=f"{source}: no such directory")
            )
            continue
        items.append(item)
    return items, errors


def _split_branch(line: str) -> tuple[str, str | None]:
    """``repo@branch`` → (repo, branch); an ``@`` that is the user of an scp-style or URL
    address (``git@host:repo``, ``https://user@host/repo``) is not a branch separator."""
    head, sep, tail = line.rpartition("@")
    if not sep or not head or not tail or ":" in tail:
        return line, None
    if "/" not in head and ":" not in head:
        return line, None  # git@host:org/repo
    if re.match(r"^[a-z+]+://[^/]*$", head):
        return line, None  # https://user@host/repo
    return head, tail


def _slug(item: BatchItem, index: int) -> str:
    base = item.source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    base = re.sub(r"\.git$", "", base) or "repo"
    return f"{index:03d}-{re.sub(r'[^A-Za-z0-9_.-]', '-', base)}"


async def _prepare(item: BatchItem, index: int, work: Path) -> Path:
    if not item.is_url and item.branch is None:
        return Path(item.source).expanduser().resolve()
    source = item.source if item.is_url else Path(item.source).expanduser().resolve().as_uri()
    dest = work / "repos" / _slug(item, index) / _slug(item, index)[4:]
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = ["git", "clone", "--quiet", "--depth", "1"]
    if item.branch:
        argv += ["--branch", item.branch]
    result = await anyio.run_process([*argv, source, str(dest)], check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise CaiError(f"git clone failed: {message[-1] if message else result.returncode}")
    return dest


async def run_batch(
    orch: Orchestrator,
    items: Iterable[BatchItem],
    command: list[str],
    *,
    parallel: int,
    run_dir: Path,
    keep: bool = False,
    progress: Callable[[BatchItem, str, str], object] = lambda item, phase, workspace: None,
) -> AsyncIterator[BatchResult]:
    """Run ``command`` in a fresh workspace per item; yield results as they finish.

    ``progress(item, phase, workspace)`` is called as an item moves through its phases
    (``cloning``, ``starting``, ``running``); the workspace path is known from ``starting`` on.
    """
    from containai.orchestrator._ssh_command import remote_command

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    limiter = anyio.CapacityLimiter(parallel)
    send, receive = anyio.create_memory_object_stream[BatchResult](parallel * 2 + 16)

    async def one(index: int, item: BatchItem) -> None:
        started = time.time()
        name = ""
        state = ""
        out_log = run_dir / "logs" / f"{_slug(item, index)}.stdout.log"
        err_log = run_dir / "logs" / f"{_slug(item, index)}.stderr.log"
        result: BatchResult
        try:
            async with limiter:
                try:
                    if item.is_url or item.branch:
                        progress(item, "cloning", "")
                    workspace = await _prepare(item, index, run_dir)
                    progress(item, "starting", str(workspace))
                    status = await orch.up(workspace)
                    progress(item, "running", str(workspace))
                    name, state = status.name, status.state
                    async with (
                        await anyio.open_file(out_log, "wb") as out,
                        await anyio.open_file(err_log, "wb") as err,
                    ):

                        async def to_out(data: bytes) -> None:
                            await out.write(data)

                        async def to_err(data: bytes) -> None:
                            await err.write(data)

                        async with orch.session(name) as target:
                            exit_code = await orch.ssh.run(
                                target, remote_command(command), stdout=to_out, stderr=to_err
                            )
                    state = orch.status(name).state
                    result = BatchResult(
                        key=item.key,
                        source=item.source,
                        branch=item.branch,
                        line=item.line,
                        status="ok" if exit_code == 0 else "failed",
                        exit_code=exit_code,
                        state=state,
                        workspace=str(workspace),
                        container=name,
                        started=started,
                        ended=time.time(),
                        duration=time.time() - started,
                        stdout_log=str(out_log),
                        stderr_log=str(err_log),
                    )
                except CaiError as exc:
                    if name:
                        try:
                            state = orch.status(name).state
                        except CaiError:
                            pass
                    result = BatchResult(
                        key=item.key,
                        source=item.source,
                        branch=item.branch,
                        line=item.line,
                        status="error",
                        state=state,
                        container=name,
                        started=started,
                        ended=time.time(),
                        duration=time.time() - started,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                await send.send(result)
        finally:
            if name and not keep:
                with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                    try:
                        await orch.remove(name)
                    except CaiError:
                        pass

    async def producer() -> None:
        async with send, anyio.create_task_group() as tg:
            for index, item in enumerate(items, start=1):
                tg.start_soon(one, index, item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        async with receive:
            async for result in receive:
                yield result
