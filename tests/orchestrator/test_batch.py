"""Batch runs on the fakes: parsing, results, one failing repo, cleanup, resume inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from containai.orchestrator._batch import BatchItem, parse_batch, run_batch
from containai.orchestrator.testing import FakeDocker


def test_parse_batch_skips_comments_and_reports_bad_lines(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    text = f"""# repos
{repo}

{repo}@dev   # a branch
https://example.invalid/org/thing.git@feature/x
git@example.invalid:org/other.git
/does/not/exist
two words here
"""
    items, errors = parse_batch(text)
    assert [(i.source, i.branch) for i in items] == [
        (str(repo), None),
        (str(repo), "dev"),
        ("https://example.invalid/org/thing.git", "feature/x"),
        ("git@example.invalid:org/other.git", None),
    ]
    assert [(e.line, e.message.split(":")[-1].strip()) for e in errors] == [
        (7, "no such directory"),
        (8, "one repository per line"),
    ]


def test_batch_item_key_includes_the_branch() -> None:
    assert BatchItem(line=1, source="/a", branch="b").key == "/a@b"
    assert BatchItem(line=1, source="/a").key == "/a"


async def test_batch_runs_every_repo_and_removes_its_workspaces(
    orchestrator, make_workspace, tmp_path: Path
) -> None:
    repos = [make_workspace(f"r{i}") for i in range(6)]
    docker = FakeDocker()

    from containai.orchestrator.testing import FakeSSH

    def handler(command: str, container) -> tuple[int, bytes, bytes]:
        return 0, b"ok\n", b""

    items = [BatchItem(line=i + 1, source=str(r)) for i, r in enumerate(repos)]
    async with orchestrator(docker) as orch:
        orch.ssh = FakeSSH(docker, handler=handler)
        results = [
            r async for r in run_batch(orch, items, ["true"], parallel=3, run_dir=tmp_path / "run")
        ]
    assert sorted(r.status for r in results) == ["ok"] * 6
    assert all(Path(r.stdout_log).read_bytes() == b"ok\n" for r in results)
    assert docker.containers == {}


async def test_batch_reports_the_failing_repo_with_its_exit_code(
    orchestrator, make_workspace, tmp_path: Path
) -> None:
    from containai._defaults import LABEL_WORKSPACE
    from containai.orchestrator.testing import FakeSSH

    repos = [make_workspace(f"r{i}") for i in range(6)]
    docker = FakeDocker()

    def handler(command: str, container) -> tuple[int, bytes, bytes]:
        if container.spec.labels[LABEL_WORKSPACE].endswith("/r2"):
            return 5, b"", b"boom\n"
        return 0, b"fine\n", b""

    async with orchestrator(docker) as orch:
        orch.ssh = FakeSSH(docker, handler=handler)
        items = [BatchItem(line=i, source=str(r)) for i, r in enumerate(repos)]
        results = {
            Path(r.source).name: r
            async for r in run_batch(
                orch, items, ["make", "test"], parallel=3, run_dir=tmp_path / "run"
            )
        }
    assert sorted(r.status for r in results.values()) == ["failed"] + ["ok"] * 5
    assert results["r2"].exit_code == 5
    assert Path(results["r2"].stderr_log).read_bytes() == b"boom\n"
    assert docker.containers == {}


async def test_orch_batch_takes_paths_and_yields_results(
    orchestrator, make_workspace, tmp_path: Path
) -> None:
    repos = [str(make_workspace(f"b{i}")) for i in range(3)]
    async with orchestrator() as orch:
        results = [r async for r in orch.batch(repos, ["true"], parallel=2, run_dir=tmp_path / "r")]
    assert sorted(r.source for r in results) == sorted(repos)
    assert {r.status for r in results} == {"ok"}


async def test_orch_batch_rejects_what_is_neither_a_directory_nor_a_url(
    orchestrator, tmp_path: Path
) -> None:
    from containai.fsm import UsageError

    async with orchestrator() as orch:
        with pytest.raises(UsageError, match="no such directory"):
            async for _ in orch.batch([str(tmp_path / "missing")], ["true"]):
                pass
