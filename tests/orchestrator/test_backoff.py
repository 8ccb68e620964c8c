from __future__ import annotations

from containai.orchestrator._backoff import Backoff


def test_backoff_grows_then_caps() -> None:
    backoff = Backoff(initial=0.1, cap=1.0, factor=2.0, jitter=0.0)
    assert [round(backoff.next_delay(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_jitter_stays_in_bounds_and_reset_restarts() -> None:
    backoff = Backoff(initial=1.0, cap=1.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.8 <= d <= 1.2 for d in delays)
    assert len(set(delays)) > 100
    backoff = Backoff(initial=0.1, cap=5.0, jitter=0.0)
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.1
