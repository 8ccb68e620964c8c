"""docs/state-machine.md is generated from the table and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from containai.fsm import State
from containai.fsm._docs import REGENERATE, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"


def test_docs_state_machine_page_is_in_sync() -> None:
    assert DOC.read_text() == render(), f"docs/state-machine.md is stale: run `{REGENERATE}`"


def test_docs_page_names_every_state_and_draws_a_diagram() -> None:
    page = render()
    assert "stateDiagram-v2" in page
    for state in State:
        assert f"| `{state.value}` |" in page
