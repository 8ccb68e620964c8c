"""Time to sshd-ready at N parallel workspaces: cai side by side with a raw-Docker baseline.

One invocation, the same engine and image, trials alternating baseline / cai. Each trial runs
in a fresh subprocess so CPU time and peak RSS belong to that trial alone.

    .venv/bin/python bench/bench_up.py                 # N = 1, 4, 8, 16; 3 rounds
    .venv/bin/python bench/bench_up.py -n 1 -n 8 --rounds 5

Baseline: for N containers at once, plain engine create+start of the same image with the same
mounts, limits and runtime settings, then each published port polled every 20 ms until the SSH
banner arrives (the floor any orchestrator pays). cai: ``Orchestrator.up`` of N workspaces to
sshd-ready (key injected, host key pinned, config written), then separately to the first
successful ``exec``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

BENCH_LABEL = "containai.bench"
VOLUME = "cai-bench-data"


def _usage() -> tuple[float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss * 1024


async def _banner(port: int, deadline: float) -> float:
    while time.monotonic() < deadline:
        try:
            with anyio.fail_after(1):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                async with stream:
                    data = await stream.receive(64)
                    if data.startswith(b"SSH-"):
                        return time.monotonic()
        except (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError):
            pass
        await anyio.sleep(0.02)
    raise TimeoutError(f"no SSH banner on {port}")


async def trial_baseline(n: int, image: str) -> dict[str, object]:
    import aiodocker

    from containai._defaults import ENGINE_HOST
    from containai.model import resolve_workspace
    from containai.orchestrator._runtime import host_config

    docker = aiodocker.Docker(url=ENGINE_HOST)
    info = await docker.system.info()
    cgroup = int(info.get("CgroupVersion") or 1)
    tmp = Path(tempfile.mkdtemp(prefix="cai-bench-"))
    specs = []
    for i in range(n):
        path = tmp / f"base{i}"
        path.mkdir()
        specs.append(resolve_workspace(path))
    ids: list[str] = []
    times: list[float] = []
    cpu0, _ = _usage()
    t0 = time.monotonic()
    try:

        async def one(i: int) -> None:
            spec = specs[i]
            extra = host_config(runtime="runc", cgroup_version=cgroup, inner_docker=False)
            binds = [f"{spec.path}:/home/agent/workspace", f"{VOLUME}:/mnt/agent-data"]
            binds += list(extra.pop("Binds", []))  # type: ignore[call-overload]
            config = {
                "Image": image,
                "Hostname": f"bench{i}",
                "Labels": {BENCH_LABEL: "1"},
                "Tty": True,
                "ExposedPorts": {"22/tcp": {}},
                "StopSignal": "SIGRTMIN+3",
                "HostConfig": {
                    "Binds": binds,
                    "PortBindings": {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": "2300-2500"}]},
                    "Memory": spec.memory,
                    "MemorySwap": spec.memory,
                    "NanoCpus": spec.nano_cpus,
                    **extra,
                },
            }
            start = time.monotonic()
            container = await docker.containers.create(config, name=f"cai-bench-{os.getpid()}-{i}")
            ids.append(container.id)
            await container.start()
            shown = await container.show()
            port = int(shown["NetworkSettings"]["Ports"]["22/tcp"][0]["HostPort"])
            done = await _banner(port, start + 120)
            times.append(done - start)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        wall = time.monotonic() - t0
        cpu1, rss = _usage()
        idle = await _idle_memory(docker, ids)
    finally:
        for cid in ids:
            try:
                await docker.containers.container(cid).delete(force=True)
            except aiodocker.DockerError:
                pass
        await docker.close()
    return {"wall": wall, "per": times, "cpu": cpu1 - cpu0, "rss": rss, "idle_mem": idle}


async def _idle_memory(docker: object, ids: list[str]) -> float:
    """Mean memory use (bytes) of idle workspaces, from their cgroups, after a short settle."""
    await anyio.sleep(3)
    used = []
    for cid in ids[:4]:
        stats = await docker.containers.container(cid).stats(stream=False)  # type: ignore[attr-defined]
        entry = stats[0] if isinstance(stats, list) else stats
        mem = entry.get("memory_stats", {})
        cache = mem.get("stats", {}).get("cache", 0) or mem.get("stats", {}).get("inactive_file", 0)
        used.append(max(0, mem.get("usage", 0) - cache))
    return statistics.mean(used) if used else 0.0


async def trial_cai(n: int, image: str, exec_too: bool) -> dict[str, object]:
    from containai.orchestrator import open_orchestrator

    tmp = Path(tempfile.mkdtemp(prefix="cai-bench-"))
    paths = []
    for i in range(n):
        path = tmp / f"ws{i}"
        path.mkdir()
        paths.append(path)
    times: list[float] = []
    exec_times: list[float] = []
    names: list[str] = []
    async with open_orchestrator(parallel=max(n, 1), journal=False, jitter=0.0) as orch:
        cpu0, _ = _usage()
        t0 = time.monotonic()
        try:

            async def one(path: Path) -> None:
                start = time.monotonic()
                status = await orch.up(path, image=image)
                names.append(status.name)
                times.append(time.monotonic() - start)
                if exec_too:

                    async def sink(data: bytes) -> None:
                        pass

                    async with orch.session(status.name) as target:
                        code = await orch.ssh.run(target, "true", stdout=sink, stderr=sink)
                    assert code == 0
                    exec_times.append(time.monotonic() - start)

            async with anyio.create_task_group() as tg:
                for path in paths:
                    tg.start_soon(one, path)
            wall = time.monotonic() - t0
            cpu1, rss = _usage()
        finally:
            with anyio.CancelScope(shield=True):
                for name in names:
                    await orch.remove(name)
    return {"wall": wall, "per": times, "exec": exec_times, "cpu": cpu1 - cpu0, "rss": rss}


def _run_trial(kind: str, n: int, image: str, exec_too: bool) -> dict[str, object]:
    argv = [sys.executable, __file__, "--trial", kind, "-n", str(n), "--image", image]
    if exec_too:
        argv.append("--exec")
    env = dict(os.environ, CONTAINAI_DATA_VOLUME=VOLUME)
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} trial (n={n}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, action="append", help="parallel workspaces (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", default=None)
    parser.add_argument("--trial", choices=["baseline", "cai"])
    parser.add_argument("--exec", action="store_true", dest="exec_too")
    parser.add_argument("--json", type=Path, default=None, help="write results JSON here")
    args = parser.parse_args()
    from containai._defaults import image_ref

    image = args.image or image_ref("base")
    if args.trial:
        n = args.n[0]
        if args.trial == "baseline":
            result = anyio.run(trial_baseline, n, image)
        else:
            result = anyio.run(trial_cai, n, image, args.exec_too)
        print(json.dumps(result))
        return
    sizes = args.n or [1, 4, 8, 16]
    report = {"machine": _machine(), "image": image, "rounds": args.rounds, "results": []}
    rows = []
    for n in sizes:
        base_runs, cai_runs, exec_runs = [], [], []
        for _ in range(args.rounds):
            base_runs.append(_run_trial("baseline", n, image, False))
            cai_runs.append(_run_trial("cai", n, image, False))
            exec_runs.append(_run_trial("cai", n, image, True))
        base_wall = statistics.median(r["wall"] for r in base_runs)
        cai_wall = statistics.median(r["wall"] for r in cai_runs)
        per = [t for r in cai_runs for t in r["per"]]
        base_per = [t for r in base_runs for t in r["per"]]
        execs = [t for r in exec_runs for t in r["exec"]]
        cpu_share = statistics.median(r["cpu"] / r["wall"] for r in cai_runs)
        row = {
            "n": n,
            "baseline_wall": base_wall,
            "cai_wall": cai_wall,
            "ratio": cai_wall / base_wall,
            "baseline_p50": _pct(base_per, 0.5),
            "cai_p50": _pct(per, 0.5),
            "cai_p95": _pct(per, 0.95),
            "exec_wall": statistics.median(r["wall"] for r in exec_runs),
            "exec_p50": _pct(execs, 0.5),
            "cai_cpu_s": statistics.median(r["cpu"] for r in cai_runs),
            "cai_cpu_share": cpu_share,
            "cai_peak_rss": max(r["rss"] for r in cai_runs),
            "idle_mem": statistics.median(r["idle_mem"] for r in base_runs),
        }
        rows.append(row)
        report["results"].append(row)
        print(_table([row]) if len(rows) == 1 else _table([row]).splitlines()[-1], flush=True)
    print()
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _table(rows: list[dict[str, float]]) -> str:
    head = (
        "| N | baseline wall | cai wall | ratio | baseline p50 | cai p50 | cai p95 | "
        "to first exec (wall / p50) | cai CPU (s, % of wall) | cai peak RSS | "
        "idle workspace mem |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['baseline_wall']:.2f} s | {r['cai_wall']:.2f} s | {r['ratio']:.2f} | "
            f"{r['baseline_p50']:.2f} s | {r['cai_p50']:.2f} s | {r['cai_p95']:.2f} s | "
            f"{r['exec_wall']:.2f} s / {r['exec_p50']:.2f} s | "
            f"{r['cai_cpu_s']:.2f} s, {100 * r['cai_cpu_share']:.1f}% | "
            f"{r['cai_peak_rss'] / 2**20:.0f} MiB | {r['idle_mem'] / 2**20:.0f} MiB |"
        )
    return "\n".join(lines)


def _machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    main()
