"""The lifecycle commands in-process against the fake engine: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from containai.cli import main


def _ws(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "src" / name
    path.mkdir(parents=True)
    return path


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_up_json_prints_transitions_for_every_workspace(tmp_path, fake_engine, capsys) -> None:
    a, b = _ws(tmp_path, "alpha"), _ws(tmp_path, "beta")
    assert main(["up", str(a), str(b), "--json"]) == 0
    records = _lines(capsys.readouterr().out)
    by_ws: dict[str, list[str]] = {}
    for r in records:
        assert r["kind"] == "transition"
        assert r["v"] == 1
        by_ws.setdefault(r["workspace"], []).append(r["to_state"])
    assert by_ws == {
        str(a): ["creating", "booting", "init-done", "sshd-ready"],
        str(b): ["creating", "booting", "init-done", "sshd-ready"],
    }


def test_up_reports_each_failure_and_exits_non_zero(tmp_path, fake_engine, capsys) -> None:
    bad = _ws(tmp_path, "bad")
    fake_engine.on_start = lambda c: fake_engine.die(c.name, 4) if "bad" in c.name else None
    good = _ws(tmp_path, "good")
    assert main(["up", str(bad), str(good)]) == 11  # WorkspaceFailed
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "code 4" in err
    assert str(good) not in err


def test_ps_json_shows_machine_states_after_up(tmp_path, fake_engine, capsys) -> None:
    ws = _ws(tmp_path, "alpha")
    assert main(["up", str(ws)]) == 0
    capsys.readouterr()
    assert main(["ps", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["workspace"], r["state"]) for r in rows] == [(str(ws), "sshd-ready")]
    assert rows[0]["ssh_alias"] == f"containai-{rows[0]['name']}"


def test_exec_exits_with_the_remote_exit_code(tmp_path, fake_engine, capsys) -> None:
    fake_engine.ssh.handler = lambda cmd, c: (
        (7, b"", b"seven\n") if "exit 7" in cmd else (0, b"", b"")
    )
    ws = _ws(tmp_path, "alpha")
    assert main(["exec", str(ws), "--", "sh", "-c", "exit 7"]) == 7


def test_stop_all_then_rm_all_leaves_no_containers(tmp_path, fake_engine, capsys) -> None:
    for name in ("a", "b", "c"):
        assert main(["up", str(_ws(tmp_path, name))]) == 0
    assert main(["stop", "--all"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["rm", "--all"]) == 0
    assert fake_engine.containers == {}


def test_stop_with_all_and_a_path_is_a_usage_error(tmp_path, fake_engine, capsys) -> None:
    assert main(["stop", "--all", str(tmp_path)]) == 2
    assert "UsageError" in capsys.readouterr().err


def test_events_replays_the_journal_since_a_duration(tmp_path, fake_engine, capsys) -> None:
    ws = _ws(tmp_path, "alpha")
    assert main(["up", str(ws)]) == 0
    capsys.readouterr()
    assert main(["events", "--since", "1h", "--no-follow", "--json"]) == 0
    states = [r["to_state"] for r in _lines(capsys.readouterr().out)]
    assert states == ["creating", "booting", "init-done", "sshd-ready"]


@pytest.mark.parametrize("bad", ["yesterday", "10x"])
def test_events_rejects_a_bad_since(bad: str, fake_engine, capsys) -> None:
    assert main(["events", "--since", bad, "--no-follow"]) == 2
    assert "--since" in capsys.readouterr().err


def test_batch_runs_each_repo_and_writes_results(tmp_path, fake_engine, capsys) -> None:
    repos = [_ws(tmp_path, f"r{i}") for i in range(3)]
    listing = tmp_path / "repos.txt"
    listing.write_text("\n".join(str(r) for r in repos) + "\n# done\n")
    results = tmp_path / "results.ndjson"
    code = main(
        [
            "batch",
            str(listing),
            "--results",
            str(results),
            "--run-dir",
            str(tmp_path / "run"),
            "--",
            "true",
        ]
    )
    assert code == 0
    lines = _lines(results.read_text())
    assert sorted(r["status"] for r in lines) == ["ok"] * 3
    assert fake_engine.containers == {}
    # resume: nothing left to run
    code = main(
        [
            "batch",
            str(listing),
            "--results",
            str(results),
            "--resume",
            "--run-dir",
            str(tmp_path / "run"),
            "--",
            "true",
        ]
    )
    assert code == 0
    assert len(_lines(results.read_text())) == 3
