"""cai batch on the real engine: six git repos, one failing; resume; an interrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def _git_repos(root: Path, n: int) -> list[Path]:
    repos = []
    for i in range(n):
        repo = root / "repos" / f"repo{i}"
        repo.mkdir(parents=True)
        (repo / "marker").write_text(f"{i}\n")
        for argv in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "."],
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
        ):
            subprocess.run(argv, cwd=repo, check=True)
        repos.append(repo)
    return repos


def _managed_for(engine: str, root: Path) -> list[str]:
    out = subprocess.run(
        [
            "docker",
            "-H",
            engine,
            "ps",
            "-a",
            "--format",
            '{{.Label "containai.workspace"}}',
            "--filter",
            "label=containai.managed=true",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [w for w in out if w.startswith(str(root))]


def _results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_batch_six_repos_one_failing_then_resume(cai, tmp_path: Path, engine: str) -> None:
    repos = _git_repos(tmp_path, 6)
    listing = tmp_path / "repos.txt"
    listing.write_text("# six repos\n" + "\n".join(map(str, repos)) + "\n\nnot a path at all\n")
    results = tmp_path / "results.ndjson"
    command = ["sh", "-c", "cat marker; test $(cat marker) != 3 || { echo broken >&2; exit 3; }"]
    run = cai(
        "batch",
        str(listing),
        "--parallel",
        "3",
        "--results",
        str(results),
        "--run-dir",
        str(tmp_path / "run"),
        "--",
        *command,
        check=False,
        timeout=600,
    )
    assert run.returncode == 1
    assert "line 9" in run.stderr  # the bad line is reported with its number
    lines = _results(results)
    by_repo = {Path(r["source"]).name: r for r in lines}
    assert sorted(r["status"] for r in lines) == ["failed"] + ["ok"] * 5
    assert by_repo["repo3"]["exit_code"] == 3
    assert Path(by_repo["repo3"]["stderr_log"]).read_text() == "broken\n"
    assert Path(by_repo["repo0"]["stdout_log"]).read_text() == "0\n"
    assert _managed_for(engine, tmp_path) == []

    # drop two results: --resume runs exactly those two again
    kept = [r for r in lines if Path(r["source"]).name not in ("repo1", "repo4")]
    results.write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = cai(
        "batch",
        str(listing),
        "--resume",
        "--results",
        str(results),
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
        "--",
        "true",
        timeout=600,
        check=False,
    )
    rerun = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert sorted(Path(r["source"]).name for r in rerun) == ["repo1", "repo4"]
    assert len(_results(results)) == 6


def test_interrupted_batch_leaves_no_orphans_and_valid_results(
    cai_env, tmp_path: Path, engine: str
) -> None:
    repos = _git_repos(tmp_path, 6)
    listing = tmp_path / "repos.txt"
    listing.write_text("\n".join(map(str, repos)) + "\n")
    results = tmp_path / "results.ndjson"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "containai",
            "batch",
            str(listing),
            "--parallel",
            "2",
            "--results",
            str(results),
            "--run-dir",
            str(tmp_path / "run"),
            "--",
            "sleep",
            "30",
        ],
        env=cai_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(_managed_for(engine, tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_managed_for(engine, tmp_path)) >= 1
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert _managed_for(engine, tmp_path) == []
    if results.exists():
        for record in _results(results):  # every line parses; nothing was half-written
            assert record["kind"] == "result"
