"""Transitions per second through the pure state machine, no I/O, no event loop.

    .venv/bin/python bench/bench_fsm.py                  # 2000 machines, 3 rounds
    .venv/bin/python bench/bench_fsm.py --machines 10000 --rounds 5

Each machine runs a full life: new, created, started, init-done marker, duplicate sshd marker,
probe success, two sessions open and close, a liveness tick and its probe, stop, die. The
machines are interleaved (every machine takes step k before any takes step k+1), as a busy
orchestrator feeds them. Reported per round as the best of ``--rounds``:

- handle/s: ``ContainerFSM.handle`` calls per second (each one table lookup, guards, effects);
- changes/s: of those, the ones that changed state (and so published a record);
- new/s: ``ContainerFSM.new`` per second (the machine construction cost alone);
- rejected/s: illegal events per second (raise InvalidTransition, nothing changes).
"""

from __future__ import annotations

import argparse
import time

from containai.fsm import (
    ContainerCreated,
    ContainerDied,
    ContainerFSM,
    ContainerStarted,
    DeadlineExpired,
    Event,
    InitDoneSeen,
    InvalidTransition,
    ProbeSucceeded,
    SessionClosed,
    SessionOpened,
    SshdReadySeen,
    StopRequested,
)

SCRIPT: list[tuple[Event, float]] = [
    (ContainerCreated(container_id="c0ffee"), 0.1),
    (ContainerStarted(), 0.2),
    (InitDoneSeen(), 1.5),
    (SshdReadySeen(), 1.6),
    (ProbeSucceeded(probe="sshd"), 1.7),
    (SessionOpened(session_id="a"), 2.0),
    (SessionOpened(session_id="b"), 2.1),
    (SessionClosed(session_id="a"), 3.0),
    (SessionClosed(session_id="b"), 3.1),
    (DeadlineExpired(), 400.0),
    (ProbeSucceeded(probe="liveness"), 400.1),
    (StopRequested(timeout=5.0), 401.0),
    (ContainerDied(exit_code=0), 402.0),
]


def _round(machines: int) -> dict[str, float]:
    t0 = time.perf_counter()
    fsms = [
        ContainerFSM.new(0.0, workspace=f"/src/w{i}", container=f"w{i}")[0] for i in range(machines)
    ]
    t1 = time.perf_counter()
    changes = 0
    for event, now in SCRIPT:
        for fsm in fsms:
            before = fsm.state
            fsm.handle(event, now)
            changes += fsm.state is not before
    t2 = time.perf_counter()
    illegal = ContainerStarted()
    for fsm in fsms:
        try:
            fsm.handle(illegal, 500.0)
        except InvalidTransition:
            pass
    t3 = time.perf_counter()
    handled = machines * len(SCRIPT)
    return {
        "handle/s": handled / (t2 - t1),
        "changes/s": changes / (t2 - t1),
        "new/s": machines / (t1 - t0),
        "rejected/s": machines / (t3 - t2),
        "µs/handle": (t2 - t1) / handled * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _round(min(args.machines, 100))  # warm up
    rounds = [_round(args.machines) for _ in range(args.rounds)]
    best = {key: max(r[key] for r in rounds) for key in rounds[0]}
    best["µs/handle"] = min(r["µs/handle"] for r in rounds)
    print(f"{args.machines} machines × {len(SCRIPT)} events, best of {args.rounds} rounds\n")
    print("| metric | value |")
    print("|---|---:|")
    for key, value in best.items():
        print(f"| {key} | {value:,.1f} |" if key.startswith("µs") else f"| {key} | {value:,.0f} |")


if __name__ == "__main__":
    main()
