from __future__ import annotations

import os
from pathlib import Path

from containai.fsm._lifecycle import Transition
from containai.orchestrator._journal import Journal


def _t(container: str, frm: str | None, to: str, at: float) -> Transition:
    return Transition(
        time=at, container=container, workspace="/w", from_state=frm, to_state=to, cause="x"
    )


def test_journal_round_trips_records_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.ndjson")
    for i, (frm, to) in enumerate([(None, "creating"), ("creating", "booting")]):
        journal.append(_t("a", frm, to, 100.0 + i))
    assert [r.to_state for r in journal.read()] == ["creating", "booting"]


def test_journal_read_since_filters_by_time(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.ndjson")
    journal.append(_t("a", None, "creating", 10.0))
    journal.append(_t("a", "creating", "booting", 20.0))
    assert [r.to_state for r in journal.read(since=15.0)] == ["booting"]


def test_journal_drops_duplicates_from_concurrent_writers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.ndjson")
    journal.append(_t("a", "init-done", "sshd-ready", 1.0))
    journal.append(_t("a", "init-done", "sshd-ready", 1.1))
    assert len(list(journal.read())) == 1


def test_journal_skips_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "j.ndjson"
    journal = Journal(path)
    journal.append(_t("a", None, "creating", 1.0))
    with path.open("ab") as f:
        f.write(b'{"kind":"transition","v":1,"ti')
    journal.append(_t("a", "creating", "booting", 2.0))
    # the torn line glued to the next one is skipped, not fatal
    assert next(r.to_state for r in journal.read()) == "creating"


def test_journal_rotates_past_the_size_limit(tmp_path: Path, monkeypatch) -> None:
    import containai.orchestrator._journal as module

    monkeypatch.setattr(module, "MAX_BYTES", 200)
    journal = Journal(tmp_path / "j.ndjson")
    for i in range(10):
        journal.append(_t(f"c{i}", None, "creating", float(i)))
    assert (tmp_path / "j.ndjson.1").exists()
    assert os.path.getsize(tmp_path / "j.ndjson") <= 400
    assert len(list(journal.read())) >= 2
