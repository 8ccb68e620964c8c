"""The lifecycle on the real engine: parallel bring-up, events, an outside kill, rebuild, rm."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.docker

HAPPY = ["creating", "booting", "init-done", "sshd-ready"]


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_up_three_in_parallel_reach_sshd_ready_in_ps_and_events(
    cai, cai_env, workspaces, engine
) -> None:
    paths = workspaces("one", "two", "three")
    up = cai("up", *map(str, paths), "--json")
    by_ws: dict[str, list[str]] = {}
    for record in _records(up.stdout):
        by_ws.setdefault(record["workspace"], []).append(record["to_state"])
    assert by_ws == {str(p): HAPPY for p in paths}

    ps = json.loads(cai("ps", "--json").stdout)
    mine = {row["workspace"]: row for row in ps if row["workspace"] in map(str, paths)}
    assert {ws: row["state"] for ws, row in mine.items()} == {str(p): "sshd-ready" for p in paths}
    assert len({row["ssh_port"] for row in mine.values()}) == 3

    replay = _records(cai("events", "--since", "10m", "--no-follow", "--json").stdout)
    for path in paths:
        assert [r["to_state"] for r in replay if r["workspace"] == str(path)] == HAPPY

    cai("rm", *map(str, paths))
    left = subprocess.run(
        ["docker", "-H", engine, "ps", "-aq", "--filter", f"label=containai.workspace={paths[0]}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""


def test_docker_kill_from_outside_is_reported_within_two_seconds(
    cai, cai_env, workspaces, engine
) -> None:
    (path,) = workspaces("victim")
    status = json.loads(cai("ps", "--json").stdout)  # warm: engine answers
    cai("up", str(path))
    name = next(
        r["name"] for r in json.loads(cai("ps", "--json").stdout) if r["workspace"] == str(path)
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "containai", "events", "--json", "--filter", f"name={name}"],
        env=cai_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None  # it says when it follows: nothing is missed after
        assert "following lifecycle events" in watcher.stderr.readline()
        killed_at = time.time()
        subprocess.run(["docker", "-H", engine, "kill", name], check=True, capture_output=True)
        assert watcher.stdout is not None
        line = watcher.stdout.readline()
        record = json.loads(line)
        assert record["container"] == name
        assert record["to_state"] == "failed"
        assert record["time"] - killed_at < 2.0
    finally:
        watcher.terminate()
        watcher.wait(10)
        for stream in (watcher.stdout, watcher.stderr):
            if stream is not None:
                stream.close()
    del status


def test_a_new_process_rebuilds_state_of_running_workspaces(cai, cai_env, workspaces) -> None:
    (path,) = workspaces("persist")
    cai("up", str(path))
    rows = json.loads(cai("ps", "--json").stdout)
    row = next(r for r in rows if r["workspace"] == str(path))
    assert row["state"] == "sshd-ready"
    cai("stop", str(path))
    rows = json.loads(cai("ps", "--json").stdout)
    assert next(r for r in rows if r["workspace"] == str(path))["state"] == "stopped"
    again = cai("up", str(path))
    assert "1/1 workspaces sshd-ready" in again.stdout


def test_resource_limits_and_labels_are_in_inspect(cai, workspaces, engine) -> None:
    (path,) = workspaces("limits")
    cai("up", str(path), "--memory", "3g", "--cpus", "1.5")
    rows = json.loads(cai("ps", "--json").stdout)
    row = next(r for r in rows if r["workspace"] == str(path))
    assert (row["memory"], row["nano_cpus"]) == (3 << 30, 1_500_000_000)
    inspect = json.loads(
        subprocess.run(
            ["docker", "-H", engine, "inspect", row["name"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]
    host = inspect["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"]) == (
        3 << 30,
        3 << 30,
        1_500_000_000,
    )
    assert host["Privileged"] is False
    assert not any("docker.sock" in b for b in host.get("Binds") or [])
    assert host["PortBindings"]["22/tcp"][0]["HostIp"] == "127.0.0.1"
    labels = inspect["Config"]["Labels"]
    for key in (
        "containai.managed",
        "containai.workspace",
        "containai.name",
        "containai.version",
        "containai.owner",
        "containai.data-volume",
    ):
        assert labels.get(key), key
    assert labels["containai.workspace"] == str(path)
    assert inspect["Config"]["Hostname"] == row["name"]
