"""Render docs/state-machine.md from the table, so the page cannot drift from the code.

Regenerate with ``python -m containai.fsm._docs > docs/state-machine.md``; a test fails when the
committed page differs from :func:`render`.
"""

from __future__ import annotations

import math
from collections import defaultdict

from containai.fsm._effects import RunProbe
from containai.fsm._machine import TAGS
from containai.fsm._states import State
from containai.fsm._table import (
    CAUSE_NEW,
    ON_EDGE,
    ON_ENTER,
    RENEWS_REASON,
    TIMEOUTS,
    EffectSpec,
    EventType,
    FromEvent,
    Guard,
    edges,
)

REGENERATE = "python -m containai.fsm._docs > docs/state-machine.md"

MEANING: dict[State, str] = {
    State.CREATING: "`cai` is creating the container (name, labels, ports, mounts, limits).",
    State.BOOTING: "Docker started the container; systemd is coming up.",
    State.INIT_DONE: "`containai-init.service` finished; the SSH probe is running.",
    State.SSHD_READY: "sshd accepts our key and its host key matches the pinned one.",
    State.ATTACHED: "at least one `cai`-owned SSH session (shell, exec, agent run) is open.",
    State.STOPPING: "a graceful stop was asked for; waiting for the container to exit.",
    State.STOPPED: "the container exited after a stop; `cai up` starts it again.",
    State.FAILED: "something went wrong; `reason` says what. `cai up` tries again.",
    State.REMOVED: "the container is gone. Terminal.",
}

INTRO = """\
# The workspace state machine

Every workspace container moves through these states; `cai ps` shows the current one and
`cai events` prints each change (see [events.md](events.md)). A workspace is usable over SSH in
`sshd-ready` and `attached`. Each state on the way up has a deadline: missing it moves the
workspace to `failed` with a reason such as "timed out in booting after 60s". In the usable
states the deadline is a liveness interval instead: `cai` re-checks sshd and stays put.
`stopped`, `failed` and `removed` rest with no deadline until you act (or Docker does).
Any fact a state does not accept is rejected and changes nothing.

This page is generated from `containai/fsm/_table.py`; regenerate it with
`{regenerate}`.
"""


def _effect(spec: EffectSpec) -> str:
    match spec:
        case FromEvent(label=label):
            return label
        case RunProbe(probe=probe):
            return f'RunProbe("{probe}")'
    return type(spec).__name__


def _effects(specs: tuple[EffectSpec, ...]) -> str:
    return ", ".join(_effect(spec) for spec in specs)


def _seconds(state: State) -> str:
    seconds = TIMEOUTS[state]
    if math.isinf(seconds):
        return "none"
    if state is State.STOPPING:
        return f"stop timeout + {seconds:g} s"
    if state in (State.SSHD_READY, State.ATTACHED):
        return f"{seconds:g} s (liveness interval)"
    return f"{seconds:g} s"


def _states() -> list[str]:
    lines = ["| state | meaning | deadline |", "|---|---|---|"]
    for state in State:
        lines.append(f"| `{state.value}` | {MEANING[state]} | {_seconds(state)} |")
    return lines


def _ordered() -> list[tuple[State, EventType, Guard | None, State]]:
    """Edges by source state, then event in declaration order (branches keep their order)."""
    states, events = list(State), list(TAGS)
    return sorted(edges(), key=lambda e: (states.index(e[0]), events.index(e[1])))


def _transitions() -> list[str]:
    lines = [
        "| from | event | guard | to | effects |",
        "|---|---|---|---|---|",
        f"| (new) | `{CAUSE_NEW}` | | `creating` | {_effects(ON_ENTER[State.CREATING])} |",
    ]
    for source, event, guard, dest in _ordered():
        specs: tuple[EffectSpec, ...] = ()
        if dest is not source:
            specs += ON_ENTER.get(dest, ())
        specs += ON_EDGE.get((source, event), ())
        to = f"`{dest.value}`" if dest is not source else "(stays)"
        if (source, event) in RENEWS_REASON:
            to = "(stays, new reason)"
        lines.append(
            f"| `{source.value}` | `{TAGS[event]}` | {guard.value if guard else ''} | {to} "
            f"| {_effects(specs)} |"
        )
    return lines


def _mermaid() -> list[str]:
    arrows: dict[tuple[State, State], list[str]] = defaultdict(list)
    for source, event, _guard, dest in _ordered():
        if dest is source and not ON_EDGE.get((source, event)):
            continue  # absorbed facts: no arrow
        label = TAGS[event]
        if label not in arrows[source, dest]:
            arrows[source, dest].append(label)
    lines = ["```mermaid", "stateDiagram-v2"]
    lines += [f'    state "{state.value}" as {state.name}' for state in State]
    lines.append("    [*] --> CREATING")
    states = list(State)
    for (source, dest), labels in sorted(
        arrows.items(), key=lambda a: (states.index(a[0][0]), states.index(a[0][1]))
    ):
        lines.append(f"    {source.name} --> {dest.name}: {', '.join(labels)}")
    lines.append("    REMOVED --> [*]")
    lines.append("```")
    return lines


def render() -> str:
    """The whole of docs/state-machine.md, built from the table."""
    parts = [
        INTRO.format(regenerate=REGENERATE),
        "## States\n",
        *_states(),
        "",
        "## Diagram\n",
        "Facts a state absorbs without effect (duplicate markers, a `die` after a failure, a",
        "session closing after the stop) are left out of the diagram; the table lists them.\n",
        *_mermaid(),
        "",
        "## Transitions\n",
        "Every change of state also publishes one record (`Publish`); so does a new failure",
        "reason while `failed`. `(stays)` marks a self-loop. Pairs not listed are rejected.\n",
        *_transitions(),
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render(), end="")
